"""Suppressed phone numbers (donotcontact.models.SuppressedPhone): the entries for phone numbers,
every sender and account, grouped by number into a bit per channel, kept in step with
donotcontact_entry by statement triggers in the writer's own transaction, whoever the writer is.

- Added entries OR their bits into their numbers' rows: order does not matter, so two
  transactions adding to one number at once cannot lose each other's bits.
- Removed or changed entries recount their numbers from the list: the rows are locked first,
  in one order, and counted in a statement of their own, whose snapshot (READ COMMITTED) holds
  whatever a transaction that held one of those rows committed meanwhile.
- TRUNCATE of the list empties the table.

E-mail addresses stay out of it: they are suppressed on Email only, which a check constraint
now holds (existing entries for an address on every channel become entries for Email, as
contacts.channel_clean has always stored them).

``dnc_channel_bits`` must agree with donotcontact.suppression.CHANNEL_BITS (a test holds them
together); an entry for every channel ('') sets every bit.
"""

from django.conf import settings
from django.db import migrations, models

PHONE_ROWS = "sender = '' AND account = '' AND strpos(contact, '@') = 0"

NORMALISE = """
DELETE FROM donotcontact_entry e
 WHERE strpos(e.contact, '@') > 0 AND e.channel <> 'email'
   AND EXISTS (SELECT 1 FROM donotcontact_entry o WHERE o.contact = e.contact
               AND o.channel = 'email' AND o.sender = e.sender AND o.account = e.account);
UPDATE donotcontact_entry SET channel = 'email'
 WHERE strpos(contact, '@') > 0 AND channel <> 'email';
"""

FORWARD = f"""
CREATE FUNCTION dnc_channel_bits(channel text) RETURNS smallint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE channel WHEN '' THEN 127 WHEN 'email' THEN 1 WHEN 'sms' THEN 2
        WHEN 'whatsapp' THEN 4 WHEN 'viber' THEN 8 WHEN 'rcs' THEN 16 WHEN 'voice' THEN 32
        WHEN 'push' THEN 64 ELSE 0 END;

CREATE FUNCTION dnc_suppressed_phones_recount(phones text[]) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM donotcontact_suppressedphone s
        WHERE s.contact = ANY (phones) ORDER BY s.contact FOR UPDATE;
    WITH counted AS (
        SELECT s.contact,
               (SELECT bit_or(dnc_channel_bits(e.channel)) FROM donotcontact_entry e
                 WHERE e.contact = s.contact AND e.sender = '' AND e.account = '') AS channels
          FROM donotcontact_suppressedphone s
         WHERE s.contact = ANY (phones)
    ), emptied AS (
        DELETE FROM donotcontact_suppressedphone s USING counted c
         WHERE s.contact = c.contact AND c.channels IS NULL
    )
    UPDATE donotcontact_suppressedphone s SET channels = c.channels FROM counted c
     WHERE s.contact = c.contact AND c.channels <> s.channels;
END $$;

CREATE FUNCTION dnc_suppressed_phones_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO donotcontact_suppressedphone AS s (contact, channels)
    SELECT contact, bit_or(dnc_channel_bits(channel)) FROM added WHERE {PHONE_ROWS}
     GROUP BY contact ORDER BY contact
    ON CONFLICT (contact) DO UPDATE SET channels = s.channels | EXCLUDED.channels
     WHERE s.channels | EXCLUDED.channels <> s.channels;
    RETURN NULL;
END $$;

CREATE FUNCTION dnc_suppressed_phones_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM dnc_suppressed_phones_recount(ARRAY(
        SELECT DISTINCT contact FROM removed WHERE {PHONE_ROWS}));
    RETURN NULL;
END $$;

CREATE FUNCTION dnc_suppressed_phones_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO donotcontact_suppressedphone (contact, channels)
    SELECT DISTINCT contact, 0 FROM added WHERE {PHONE_ROWS} ORDER BY contact
    ON CONFLICT (contact) DO NOTHING;
    PERFORM dnc_suppressed_phones_recount(ARRAY(
        SELECT contact FROM removed WHERE {PHONE_ROWS}
        UNION SELECT contact FROM added WHERE {PHONE_ROWS}));
    RETURN NULL;
END $$;

CREATE FUNCTION dnc_suppressed_phones_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- DELETE, not TRUNCATE: a TRUNCATE of both tables at once (a flush) still holds this one.
    DELETE FROM donotcontact_suppressedphone;
    RETURN NULL;
END $$;

CREATE TRIGGER dnc_suppressed_phones_added AFTER INSERT ON donotcontact_entry
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION dnc_suppressed_phones_added();
CREATE TRIGGER dnc_suppressed_phones_removed AFTER DELETE ON donotcontact_entry
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION dnc_suppressed_phones_removed();
CREATE TRIGGER dnc_suppressed_phones_changed AFTER UPDATE ON donotcontact_entry
    REFERENCING OLD TABLE AS removed NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION dnc_suppressed_phones_changed();
CREATE TRIGGER dnc_suppressed_phones_truncated AFTER TRUNCATE ON donotcontact_entry
    FOR EACH STATEMENT EXECUTE FUNCTION dnc_suppressed_phones_truncated();

INSERT INTO donotcontact_suppressedphone (contact, channels)
SELECT contact, bit_or(dnc_channel_bits(channel)) FROM donotcontact_entry
 WHERE {PHONE_ROWS} GROUP BY contact;
"""

BACKWARD = """
DROP TRIGGER dnc_suppressed_phones_added ON donotcontact_entry;
DROP TRIGGER dnc_suppressed_phones_removed ON donotcontact_entry;
DROP TRIGGER dnc_suppressed_phones_changed ON donotcontact_entry;
DROP TRIGGER dnc_suppressed_phones_truncated ON donotcontact_entry;
DROP FUNCTION dnc_suppressed_phones_added();
DROP FUNCTION dnc_suppressed_phones_removed();
DROP FUNCTION dnc_suppressed_phones_changed();
DROP FUNCTION dnc_suppressed_phones_truncated();
DROP FUNCTION dnc_suppressed_phones_recount(text[]);
DROP FUNCTION dnc_channel_bits(text);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("donotcontact", "0002_entry_imports"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunSQL(NORMALISE, migrations.RunSQL.noop),
        migrations.AddConstraint(
            model_name="entry",
            constraint=models.CheckConstraint(
                condition=~models.Q(contact__contains="@") | models.Q(channel="email"),
                name="dnc_entry_email_for_email",
            ),
        ),
        migrations.CreateModel(
            name="SuppressedPhone",
            fields=[
                ("contact", models.CharField(max_length=254, primary_key=True, serialize=False)),
                ("channels", models.SmallIntegerField()),
            ],
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
