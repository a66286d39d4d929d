"""Text messages: the provider interface, the Twilio provider, and a local sink for development."""

from ordertrack.sms.provider import SmsProvider, build_sms_provider
from ordertrack.sms.twilio import TwilioSms

__all__ = ["SmsProvider", "TwilioSms", "build_sms_provider"]
