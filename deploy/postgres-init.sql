-- Runs once, on the first start of an empty PostgreSQL volume: the ordertrack read model's database.
-- Temporal's own databases (temporal, temporal_visibility) are created by temporalio/auto-setup.
CREATE USER ordertrack WITH PASSWORD 'ordertrack';
CREATE DATABASE ordertrack OWNER ordertrack;
