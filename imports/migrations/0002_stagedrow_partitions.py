"""imports_stagedrow becomes a table partitioned by import (imports/staging.py): the rows of
past imports (those kept for error reports) move into a partition each."""

from django.db import migrations

FORWARD = """
ALTER TABLE imports_stagedrow RENAME TO imports_stagedrow_old;
ALTER INDEX imports_stagedrow_pkey RENAME TO imports_stagedrow_old_pkey;
CREATE TABLE imports_stagedrow (LIKE imports_stagedrow_old INCLUDING DEFAULTS)
    PARTITION BY LIST (import_id);
ALTER TABLE imports_stagedrow ADD CONSTRAINT imports_stagedrow_pkey
    PRIMARY KEY (import_id, row_no);
DO $$
DECLARE i bigint;
BEGIN
    FOR i IN SELECT DISTINCT import_id FROM imports_stagedrow_old LOOP
        EXECUTE format(
            'CREATE TABLE imports_stagedrow_%s PARTITION OF imports_stagedrow FOR VALUES IN (%s)',
            i, i
        );
    END LOOP;
END $$;
INSERT INTO imports_stagedrow SELECT * FROM imports_stagedrow_old;
DROP TABLE imports_stagedrow_old;
"""

BACKWARD = """
CREATE TABLE imports_stagedrow_plain (LIKE imports_stagedrow INCLUDING DEFAULTS);
INSERT INTO imports_stagedrow_plain SELECT * FROM imports_stagedrow;
DROP TABLE imports_stagedrow;
ALTER TABLE imports_stagedrow_plain RENAME TO imports_stagedrow;
ALTER TABLE imports_stagedrow ADD CONSTRAINT imports_stagedrow_pkey
    PRIMARY KEY (import_id, row_no);
"""


class Migration(migrations.Migration):
    dependencies = [("imports", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
