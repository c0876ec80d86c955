"""The per-account and per-post counters, named once.

Every list of counters is derived from this table: the account_* and post_* columns
(schema_sql), the fold's rule lookups (fold), the upserts and rollups (writes,
maintenance), the view columns (views) and the /metrics families (exposition); a test holds
the README's metric list and STORE.md's column table to it. A new counter is one row,
appended (its place is its column in a new file), plus its rule in `fold.RULES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class Flow(StrEnum):
    """How a counter moves: what a Prometheus type can carry."""

    NET = "net"  # creates minus deletes, may go down: a gauge equal to the SQL number
    GROSS = "gross"  # only grows: a Prometheus counter (`_total`)


@dataclass(frozen=True, slots=True)
class AccountCounter:
    """One column of account_minutes / _hours / _days and of the account views."""

    name: str
    flow: Flow
    view: int  # place among the counter columns of account_totals and account_window
    metric: str | None = None  # bluepulse_account_<metric>, `_total` when gross; None: SQL only
    doc: str = ""  # the metric's help text

    @property
    def metric_name(self) -> str | None:
        if self.metric is None:
            return None
        suffix = "_total" if self.flow is Flow.GROSS else ""
        return f"bluepulse_account_{self.metric}{suffix}"


NET, GROSS = Flow.NET, Flow.GROSS
_C = AccountCounter
# Storage order (a file's column order: append only). `view` < LEADING are the leading
# columns the views promise; the others follow in `view` order.
COUNTERS: Final = (
    _C("posts", NET, 0, "posts_net", "Posts minus deleted posts (account_totals.posts)."),
    _C("posts_deleted", GROSS, 9, "posts_deleted", "Posts the account deleted."),
    _C("reposts_made", NET, 15),
    _C("likes_made", NET, 16),
    _C("follows_made", NET, 17),
    _C("deletes", GROSS, 14),
    _C("likes", NET, 1, "likes_net", "Likes received net of un-likes (account_totals.likes)."),
    _C("reposts", NET, 2, "reposts_net", "Reposts received net of un-reposts (account_totals.reposts)."),
    _C("replies", GROSS, 3, "replies_received", "Replies to the account's posts."),
    _C("quotes", GROSS, 4, "quotes_received", "Quotes of the account's posts."),
    _C("mentions", GROSS, 7, "mentions_received", "Mentions of the account."),
    _C("follows_gained", GROSS, 5, "follows_gained", "Follows of the account."),
    _C("follows_lost", GROSS, 6, "follows_lost", "Unfollows of the account."),
    _C("posts_created", GROSS, 8, "posts", "Posts (incl. replies, quotes) created by the account."),
    _C("likes_received", GROSS, 10, "likes_received", "Likes received, before un-likes."),
    _C("unlikes", GROSS, 11, "unlikes_received", "Likes withdrawn from the account's posts."),
    _C("reposts_received", GROSS, 12, "reposts_received", "Reposts received, before un-reposts."),
    _C("unreposts", GROSS, 13, "unreposts_received", "Reposts withdrawn."),
    _C("mentions_by_name", GROSS, 18, "mentions_by_name", "Posts naming the account by a watch term."),
)
LEADING: Final = 7

ACCOUNT_COUNTERS: Final = tuple(c.name for c in COUNTERS)
COLUMN: Final = {name: i for i, name in enumerate(ACCOUNT_COUNTERS)}  # name -> index in a fold row
BY_VIEW: Final = tuple(sorted(COUNTERS, key=lambda c: c.view))
VIEW_LEADING: Final = tuple(c.name for c in BY_VIEW[:LEADING])
VIEW_TRAILING: Final = tuple(c.name for c in BY_VIEW[LEADING:])

# per post and bucket (post_minutes, post_days): what the post received, net of withdrawals
POST_COUNTERS: Final = ("likes", "reposts", "replies", "quotes")
