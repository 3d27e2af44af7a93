"""Row digests (imports/digest.py): a customer remembers the digest of the import row that last
wrote it, and staged rows carry theirs. Any other update of a column an import writes clears the
customer's digest, by trigger, so that no writer (the ORM, the API's bulk upsert, undo, a
future one) can leave a digest that no longer describes the customer. The import itself sets a
new digest in the same UPDATE, which the trigger leaves alone.

The column is not on the Customer model: only SQL reads or writes it, so an ORM save never
carries a digest it read earlier back over a newer one.
"""

from django.db import migrations, models

# Every column an import can write (customers.profile.STANDARD_FIELDS, the custom values and the
# user ID); tests/imports/test_digest.py holds the trigger to the registry.
IMPORTED_COLUMNS = (
    "user_id, name, first_name, last_name, email, phone, city, country, region, timezone,"
    " external_id, user_type, custom"
)

FORWARD = f"""
ALTER TABLE customers_customer ADD COLUMN import_digest bigint;
CREATE FUNCTION imports_digest_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.import_digest := NULL;
    RETURN NEW;
END $$;
CREATE TRIGGER imports_digest_clear
    BEFORE UPDATE OF {IMPORTED_COLUMNS} ON customers_customer
    FOR EACH ROW
    WHEN (OLD.import_digest IS NOT NULL
          AND NEW.import_digest IS NOT DISTINCT FROM OLD.import_digest)
    EXECUTE FUNCTION imports_digest_clear();
"""

BACKWARD = """
DROP TRIGGER imports_digest_clear ON customers_customer;
DROP FUNCTION imports_digest_clear();
ALTER TABLE customers_customer DROP COLUMN import_digest;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("imports", "0003_import_created"),
        ("customers", "0003_country_case_insensitive_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="stagedrow",
            name="cells",
            field=models.TextField(null=True),
        ),
        migrations.AddField(
            model_name="stagedrow",
            name="digest",
            field=models.BigIntegerField(null=True),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
