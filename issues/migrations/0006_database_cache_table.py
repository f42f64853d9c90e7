from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    """The database cache (throttle counters shared by every process when Redis is not
    configured) needs its table; createcachetable does nothing for other cache backends and
    nothing when the table exists."""
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):

    dependencies = [
        ("issues", "0005_token_unscoped_flag_and_idempotency_per_token"),
    ]

    operations = [
        migrations.RunPython(create_cache_table, migrations.RunPython.noop),
    ]
