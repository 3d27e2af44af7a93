"""Suppressed contacts (donotcontact.models.SuppressedContact): the entries for every sender and
account, grouped by contact into a bit per channel, kept in step with donotcontact_entry by
statement triggers in the writer's own transaction, whoever the writer is.

- Added entries OR their bits into their contacts' rows: order does not matter, so two
  transactions adding to one contact at once cannot lose each other's bits.
- Removed or changed entries recount their contacts from the list: the rows are locked first,
  in contact order, and counted in a statement of their own, whose snapshot (READ COMMITTED)
  holds whatever a transaction that held one of those rows committed meanwhile.
- TRUNCATE of the list empties the table.

``dnc_channel_bits`` must agree with donotcontact.suppression.CHANNEL_BITS (a test holds them
together); an entry for every channel ('') sets every bit.
"""

from django.db import migrations, models

FORWARD = """
CREATE FUNCTION dnc_channel_bits(channel text) RETURNS smallint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE channel WHEN '' THEN 127 WHEN 'email' THEN 1 WHEN 'sms' THEN 2
        WHEN 'whatsapp' THEN 4 WHEN 'viber' THEN 8 WHEN 'rcs' THEN 16 WHEN 'voice' THEN 32
        WHEN 'push' THEN 64 ELSE 0 END;

CREATE FUNCTION dnc_suppressed_contacts_recount(contacts text[]) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM donotcontact_suppressedcontact s
        WHERE s.contact = ANY (contacts) ORDER BY s.contact FOR UPDATE;
    WITH counted AS (
        SELECT s.contact,
               (SELECT bit_or(dnc_channel_bits(e.channel)) FROM donotcontact_entry e
                 WHERE e.contact = s.contact AND e.sender = '' AND e.account = '') AS channels
          FROM donotcontact_suppressedcontact s
         WHERE s.contact = ANY (contacts)
    ), emptied AS (
        DELETE FROM donotcontact_suppressedcontact s USING counted c
         WHERE s.contact = c.contact AND c.channels IS NULL
    )
    UPDATE donotcontact_suppressedcontact s SET channels = c.channels FROM counted c
     WHERE s.contact = c.contact AND c.channels <> s.channels;
END $$;

CREATE FUNCTION dnc_suppressed_contacts_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO donotcontact_suppressedcontact AS s (contact, is_email, channels)
    SELECT contact, strpos(contact, '@') > 0, bit_or(dnc_channel_bits(channel))
      FROM added WHERE sender = '' AND account = ''
     GROUP BY contact ORDER BY contact
    ON CONFLICT (contact) DO UPDATE SET channels = s.channels | EXCLUDED.channels
     WHERE s.channels | EXCLUDED.channels <> s.channels;
    RETURN NULL;
END $$;

CREATE FUNCTION dnc_suppressed_contacts_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM dnc_suppressed_contacts_recount(ARRAY(
        SELECT DISTINCT contact FROM removed WHERE sender = '' AND account = ''));
    RETURN NULL;
END $$;

CREATE FUNCTION dnc_suppressed_contacts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO donotcontact_suppressedcontact AS s (contact, is_email, channels)
    SELECT contact, strpos(contact, '@') > 0, 0 FROM added
     WHERE sender = '' AND account = '' GROUP BY contact ORDER BY contact
    ON CONFLICT (contact) DO NOTHING;
    PERFORM dnc_suppressed_contacts_recount(ARRAY(
        SELECT contact FROM removed WHERE sender = '' AND account = ''
        UNION SELECT contact FROM added WHERE sender = '' AND account = ''));
    RETURN NULL;
END $$;

CREATE FUNCTION dnc_suppressed_contacts_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- DELETE, not TRUNCATE: a TRUNCATE of both tables at once (a flush) still holds this one.
    DELETE FROM donotcontact_suppressedcontact;
    RETURN NULL;
END $$;

CREATE TRIGGER dnc_suppressed_contacts_added AFTER INSERT ON donotcontact_entry
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION dnc_suppressed_contacts_added();
CREATE TRIGGER dnc_suppressed_contacts_removed AFTER DELETE ON donotcontact_entry
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION dnc_suppressed_contacts_removed();
CREATE TRIGGER dnc_suppressed_contacts_changed AFTER UPDATE ON donotcontact_entry
    REFERENCING OLD TABLE AS removed NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION dnc_suppressed_contacts_changed();
CREATE TRIGGER dnc_suppressed_contacts_truncated AFTER TRUNCATE ON donotcontact_entry
    FOR EACH STATEMENT EXECUTE FUNCTION dnc_suppressed_contacts_truncated();

INSERT INTO donotcontact_suppressedcontact (contact, is_email, channels)
SELECT contact, strpos(contact, '@') > 0, bit_or(dnc_channel_bits(channel))
  FROM donotcontact_entry WHERE sender = '' AND account = '' GROUP BY contact;
"""

BACKWARD = """
DROP TRIGGER dnc_suppressed_contacts_added ON donotcontact_entry;
DROP TRIGGER dnc_suppressed_contacts_removed ON donotcontact_entry;
DROP TRIGGER dnc_suppressed_contacts_changed ON donotcontact_entry;
DROP TRIGGER dnc_suppressed_contacts_truncated ON donotcontact_entry;
DROP FUNCTION dnc_suppressed_contacts_added();
DROP FUNCTION dnc_suppressed_contacts_removed();
DROP FUNCTION dnc_suppressed_contacts_changed();
DROP FUNCTION dnc_suppressed_contacts_truncated();
DROP FUNCTION dnc_suppressed_contacts_recount(text[]);
DROP FUNCTION dnc_channel_bits(text);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("donotcontact", "0002_entry_imports"),
    ]

    operations = [
        migrations.CreateModel(
            name="SuppressedContact",
            fields=[
                ("contact", models.CharField(max_length=254, primary_key=True, serialize=False)),
                ("is_email", models.BooleanField()),
                ("channels", models.SmallIntegerField()),
            ],
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
