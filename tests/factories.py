from __future__ import annotations

import factory

from customers.models import Customer
from members.models import Member
from members.roles import Role

PASSWORD = "correct horse battery staple"


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member
        django_get_or_create = ("email",)
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"member{n}@test.example")
    name = factory.Faker("name")
    role = Role.MARKETER
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    user_id = factory.Sequence(lambda n: f"user-{n:05d}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    name = factory.LazyAttribute(lambda o: f"{o.first_name} {o.last_name}")
    email = factory.LazyAttribute(lambda o: f"{o.user_id}@example.com")
    city = "Lisbon"
    country = "PT"


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "tags.Tag"

    name = factory.Sequence(lambda n: f"tag-{n}")


class CustomFieldFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "customers.CustomField"

    label = factory.Sequence(lambda n: f"Field {n}")
    name = factory.Sequence(lambda n: f"field_{n}")
    type = "text"
