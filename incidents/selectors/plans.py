"""Reads response plans: the ones a person may declare with, found by search or by name, and the admins' list."""

from datetime import datetime

from django.db.models import Count, Max, OuterRef, Q, QuerySet, Subquery

from .. import roles
from ..models import Declaration, ResponsePlan


def response_plans_available_to(*, user) -> QuerySet[ResponsePlan]:
    """The plans this person may declare with: shown, still in AWS, and open to one of their groups."""
    return _plans_available(group_ids=None if user.is_superuser else roles.group_ids(user))


def _plans_available(*, group_ids: list[int] | None) -> QuerySet[ResponsePlan]:
    """`group_ids` None: every plan that is shown and still in AWS (for superusers)."""
    plans = ResponsePlan.objects.filter(is_visible=True, deleted_in_aws=False)
    if group_ids is None:
        return plans
    return plans.filter(Q(allowed_groups=None) | Q(allowed_groups__in=group_ids)).distinct()


def response_plan_available_get(*, user, pk: int) -> ResponsePlan | None:
    """The plan with this id if the person may declare with it, else None."""
    return response_plans_available_to(user=user).filter(pk=pk).first()


def response_plan_is_available_to(*, user, response_plan: ResponsePlan) -> bool:
    return response_plans_available_to(user=user).filter(pk=response_plan.pk).exists()


def response_plans_version() -> tuple[datetime | None, int]:
    """The plans' last change and their number: part of the key of a cached list of plans. Every change to a plan
    goes through save(), which sets updated_at (its allowed groups are set in the same transaction)."""
    version = ResponsePlan.objects.aggregate(changed=Max("updated_at"), count=Count("id"))
    return version["changed"], version["count"]


def response_plans_search(
    *, user, query: str = "", keep_pk: int | None = None, drill: bool = False
) -> QuerySet[ResponsePlan]:
    """The available plans matching every word of `query` in any of their names or notes: the drill plans when
    declaring a drill (`drill`), the others otherwise.

    `keep_pk` (the plan already chosen) stays in the list whatever the query, so that searching never unchoses it.
    """
    plans = response_plans_available_to(user=user).filter(is_drill=drill)
    matches = _matching_every_word(query)
    if matches is None:
        return plans
    if keep_pk:
        matches |= Q(pk=keep_pk)
    return plans.filter(matches)


# What a plan search looks in, on the declare page and the admins' list alike: its names, its "when to use" note,
# and its template's title and summary.
SEARCHED_FIELDS = ("name", "display_name", "aws_display_name", "when_to_use", "template_title", "template_summary")


def _matching_every_word(query: str) -> Q | None:
    """Plans with every word of `query` (the first 8) in any of SEARCHED_FIELDS; None when there is no word."""
    # A NUL cannot be in any stored text (nor be sent to PostgreSQL): it separates words like a space.
    words = query.replace("\x00", " ").split()
    if not words:
        return None
    matches = Q()
    for word in words[:8]:
        in_any = Q()
        for name in SEARCHED_FIELDS:
            in_any |= Q(**{f"{name}__icontains": word})
        matches &= in_any
    return matches


def response_plan_find_for(*, user, reference: str) -> ResponsePlan | None:
    """An available plan by its portal number or its AWS name (as runbooks and bookmarks name it)."""
    plans = response_plans_available_to(user=user)
    reference = reference.strip()
    if "\x00" in reference:
        return None  # no plan is named so (PostgreSQL's text cannot hold a NUL, nor be asked about one)
    # ASCII digits only ("²" and "٣" are digits to isdigit(), not to int()), and no more than an id can have.
    if reference.isascii() and reference.isdigit() and len(reference) <= 18:
        found = plans.filter(pk=int(reference)).first()
        if found:
            return found
    return plans.filter(Q(name=reference) | Q(arn=reference)).first()


def response_plan_choices(*, user) -> list[tuple[int, str]]:
    """The history's plan filter, as (id, label) by name. Managers: every plan the portal knows, hidden and deleted
    ones too (their declarations stay in the history). Others see only their own declarations, so only the plans
    they may use or have declared with: the names of hidden and restricted plans are not theirs to read."""
    plans = ResponsePlan.objects.all()
    if not roles.is_manager(user):
        available = response_plans_available_to(user=user).values("pk")
        declared_with = Declaration.objects.filter(declared_by=user).values("response_plan_id")
        plans = plans.filter(Q(pk__in=available) | Q(pk__in=declared_with))
    rows = plans.order_by("name").values_list("id", "name", "display_name", "aws_display_name")
    return [
        (pk, ResponsePlan.label_of(name=name, display_name=display_name, aws_display_name=aws_display_name))
        for pk, name, display_name, aws_display_name in rows
    ]


def response_plans_for_curation(*, query: str = "") -> QuerySet[ResponsePlan]:
    """Every plan the portal knows (or those matching `query`, as the declare page's search matches), shown ones
    first in the declare page's order, with when each was last declared with (one index probe per plan)."""
    last_used = (
        Declaration.objects.filter(response_plan=OuterRef("pk")).order_by("-created_at", "-id").values("created_at")
    )
    plans = ResponsePlan.objects.all()
    matches = _matching_every_word(query)
    if matches is not None:
        plans = plans.filter(matches)
    return (
        plans.annotate(last_used=Subquery(last_used[:1]))
        .prefetch_related("allowed_groups")
        .order_by("deleted_in_aws", "-is_visible", "order", "name", "id")
    )
