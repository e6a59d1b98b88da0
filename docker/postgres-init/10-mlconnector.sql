-- The ml-connector state store lives in its own database and role on the same server.
CREATE ROLE mlconnector LOGIN PASSWORD 'mlconnector';
CREATE DATABASE mlconnector_state OWNER mlconnector;
