from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("uploads", "0001_initial"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="tokenissuance",
            index=models.Index(fields=["request_id"], name="issuance_request_id"),
        ),
    ]
