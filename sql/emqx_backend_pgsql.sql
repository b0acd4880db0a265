-- mqttd schema: the five tables of EMQX's emqx_backend_pgsql, column for column, plus
-- the indexes mqttd's queries use. Load with: psql -d mqtt -f sql/emqx_backend_pgsql.sql

CREATE TABLE mqtt_client(
    id SERIAL primary key,
    clientid character varying(100),
    state integer,
    node character varying(100),
    online_at timestamp,
    offline_at timestamp,
    created timestamp without time zone,
    UNIQUE (clientid)
);

CREATE TABLE mqtt_sub(
    id SERIAL primary key,
    clientid character varying(100),
    topic character varying(200),
    qos integer,
    created timestamp without time zone,
    UNIQUE (clientid, topic)
);

CREATE TABLE mqtt_msg (
  id SERIAL primary key,
  msgid character varying(60),
  sender character varying(100),
  topic character varying(200),
  qos integer,
  retain integer,
  payload text,
  arrived timestamp without time zone
);

CREATE TABLE mqtt_retain(
  id SERIAL primary key,
  topic character varying(200),
  msgid character varying(60),
  sender character varying(100),
  qos integer,
  payload text,
  arrived timestamp without time zone,
  UNIQUE (topic)
);

CREATE TABLE mqtt_acked (
  id SERIAL primary key,
  clientid character varying(100),
  topic character varying(100),
  mid integer,
  created timestamp without time zone,
  UNIQUE (clientid, topic)
);

-- Offline fetch reads the unread messages of a topic in id order.
CREATE INDEX mqtt_msg_topic_id ON mqtt_msg (topic, id);
-- An ack names the message by msgid; this finds its row id. Unique, so that a batch
-- written again after a lost connection (its commit unknown) stores each message once.
CREATE UNIQUE INDEX mqtt_msg_msgid ON mqtt_msg (msgid);
-- "Messages published by a client", the seed's example query.
CREATE INDEX mqtt_msg_sender ON mqtt_msg (sender);
