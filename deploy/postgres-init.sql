-- Runs once, on the first start of an empty PostgreSQL volume: Temporal's two databases (their
-- schema is set up by the temporal-schema job) and the ordertrack read model's database.
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
CREATE USER ordertrack WITH PASSWORD 'ordertrack';
CREATE DATABASE ordertrack OWNER ordertrack;
