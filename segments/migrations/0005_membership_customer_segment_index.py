# The customer index also carries the segment, so "the segments of these customers"
# (incremental evaluation) is an index-only scan instead of a heap fetch per membership.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0003_country_case_insensitive_index"),
        ("segments", "0004_segment_name_unique"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="membership",
            index=models.Index(fields=["customer", "segment"], name="membership_cust_segment_idx"),
        ),
        migrations.RemoveIndex(model_name="membership", name="membership_customer_idx"),
    ]
