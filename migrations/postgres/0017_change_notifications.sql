-- Several nodes on one database: each keeps in memory a mirror of the access-token deny-list
-- and a cache of clients. These triggers tell the other nodes about every write, whichever
-- statement (or tool) makes it: `pg_notify` inside the writing transaction is delivered to the
-- listening nodes when, and only if, that transaction commits (src/store/listen.rs).
--   portcullis_deny     'j:<jti>' or 's:<sid>': the key is deny-listed from now on
--   portcullis_clients  '<client id>': the client was created, changed or deleted
-- Deletions from the deny-list are not announced: only expired rows are deleted, and an expired
-- token is refused anyway; the nodes' periodic full reload drops them from memory.

CREATE FUNCTION notify_access_token_denied() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('portcullis_deny', 'j:' || NEW.jti);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER revoked_access_tokens_notify
AFTER INSERT OR UPDATE ON revoked_access_tokens
FOR EACH ROW EXECUTE FUNCTION notify_access_token_denied();

CREATE FUNCTION notify_session_denied() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('portcullis_deny', 's:' || NEW.sid);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER revoked_session_tokens_notify
AFTER INSERT OR UPDATE ON revoked_session_tokens
FOR EACH ROW EXECUTE FUNCTION notify_session_denied();

CREATE FUNCTION notify_client_changed() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('portcullis_clients', OLD.id);
    ELSE
        PERFORM pg_notify('portcullis_clients', NEW.id);
        IF TG_OP = 'UPDATE' AND OLD.id <> NEW.id THEN
            PERFORM pg_notify('portcullis_clients', OLD.id);
        END IF;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER clients_notify
AFTER INSERT OR UPDATE OR DELETE ON clients
FOR EACH ROW EXECUTE FUNCTION notify_client_changed();
