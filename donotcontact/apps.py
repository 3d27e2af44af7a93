from django.apps import AppConfig


class DoNotContactConfig(AppConfig):
    name = "donotcontact"
    verbose_name = "Do Not Contact"
