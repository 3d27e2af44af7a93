"""Configuration → Tags: any member may look, Marketers and Admins may change."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from activity.services import Actor
from members.access import marketer_required, member_required
from tags import selectors, services
from tags.forms import TagMergeForm, TagNameForm
from tags.services import TagInvalid
from workbench.http import MemberRequest


def _list_context(q: str, form: TagNameForm) -> dict:
    return {"result": selectors.tag_list(q), "q": q, "form": form}


@member_required
@require_GET
def tag_list(request: MemberRequest) -> HttpResponse:
    q = request.GET.get("q", "")
    template = "tags/list.html#rows" if request.htmx else "tags/list.html"
    return render(request, template, _list_context(q, TagNameForm()))


@marketer_required
@require_http_methods(["GET", "POST"])
def tag_create(request: MemberRequest) -> HttpResponse:
    if request.method == "GET":  # e.g. reloading the list after a refused name
        return redirect("tag-list")
    form = TagNameForm(request.POST)
    if form.is_valid():
        try:
            tag = services.tag_create(
                name=form.cleaned_data["name"], actor=Actor.for_request(request)
            )
        except TagInvalid as exc:
            form.add_error("name", str(exc))
        else:
            messages.success(request, f"Tag “{tag.name}” created.")
            return redirect("tag-list")
    return render(request, "tags/list.html", _list_context("", form))


@marketer_required
@require_http_methods(["GET", "POST"])
def tag_edit(request: MemberRequest, pk: int) -> HttpResponse:
    tag = selectors.tag_get(pk)
    form = TagNameForm(request.POST or None, initial={"name": tag.name})
    if request.method == "POST" and form.is_valid():
        old = tag.name
        try:
            services.tag_rename(
                tag=tag, name=form.cleaned_data["name"], actor=Actor.for_request(request)
            )
        except TagInvalid as exc:
            form.add_error("name", str(exc))
        else:
            messages.success(request, f"Tag “{old}” renamed to “{tag.name}”.")
            return redirect("tag-list")
    context = {"tag": tag, "form": form, "customers": selectors.tag_customer_count(tag)}
    return render(request, "tags/edit.html", context)


@marketer_required
@require_http_methods(["GET", "POST"])
def tag_delete(request: MemberRequest, pk: int) -> HttpResponse:
    tag = selectors.tag_get(pk)
    if request.method == "POST":
        count = services.tag_delete(tag=tag, actor=Actor.for_request(request))
        removed = f"removed from {count} customer{'s' if count != 1 else ''}"
        messages.success(request, f"Tag “{tag.name}” deleted and {removed}.")
        return redirect("tag-list")
    context = {"tag": tag, "customers": selectors.tag_customer_count(tag)}
    template = "tags/delete.html#confirm" if request.htmx else "tags/delete.html"
    return render(request, template, context)


@marketer_required
@require_http_methods(["GET", "POST"])
def tag_merge(request: MemberRequest, pk: int) -> HttpResponse:
    source = selectors.tag_get(pk)
    form = TagMergeForm(request.POST or None, targets=selectors.tag_merge_targets(source))
    if request.method == "POST" and form.is_valid():
        target = form.cleaned_data["target"]
        try:
            moved = services.tag_merge(
                source=source, target=target, actor=Actor.for_request(request)
            )
        except TagInvalid as exc:
            form.add_error("target", str(exc))
        else:
            customers = f"{moved} customer{'s' if moved != 1 else ''}"
            messages.success(
                request, f"“{source.name}” merged into “{target.name}”: {customers} moved."
            )
            return redirect("tag-list")
    context = {"tag": source, "form": form, "customers": selectors.tag_customer_count(source)}
    template = "tags/merge.html#merge" if request.htmx else "tags/merge.html"
    return render(request, template, context)
