-- Wakes Herald's outbox consumer at commit instead of at its next poll (docs/outbox.md; Prisma does not model
-- triggers, so this migration was written by hand, as `prisma migrate dev --create-only` allows).
CREATE OR REPLACE FUNCTION herald_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('herald_outbox', '');
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS herald_outbox_notify ON herald_outbox;
CREATE TRIGGER herald_outbox_notify AFTER INSERT ON herald_outbox
  FOR EACH STATEMENT EXECUTE FUNCTION herald_outbox_notify();
