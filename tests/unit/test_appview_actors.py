"""What people paste becomes a handle or a DID, or a reason a person can act on."""

from __future__ import annotations

import pytest

from appview.actors import ActorReason, ActorRef, ActorRejected, parse_actor, parse_actors, pasted_tokens

PLC = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"


@pytest.mark.parametrize(
    ("pasted", "kind", "value"),
    [
        ("chu-toulouse.bsky.social", "handle", "chu-toulouse.bsky.social"),
        ("@Chu-Toulouse.bsky.social", "handle", "chu-toulouse.bsky.social"),
        ("  @chu-toulouse.bsky.social,  ", "handle", "chu-toulouse.bsky.social"),
        ("<chu-toulouse.bsky.social>", "handle", "chu-toulouse.bsky.social"),
        ("aphp.fr", "handle", "aphp.fr"),
        ("Institut-Curie.org", "handle", "institut-curie.org"),
        ("https://bsky.app/profile/chu-toulouse.bsky.social", "handle", "chu-toulouse.bsky.social"),
        ("https://bsky.app/profile/@Chu-Toulouse.bsky.social/", "handle", "chu-toulouse.bsky.social"),
        ("bsky.app/profile/aphp.fr", "handle", "aphp.fr"),
        ("https://bsky.app/profile/aphp.fr/post/3lb5bb6qehw22", "handle", "aphp.fr"),
        (f"https://bsky.app/profile/{PLC}", "did", PLC),
        (f"https://bsky.app/profile/{PLC.replace(':', '%3A')}", "did", PLC),
        (f"https://bsky.app/profile/{PLC}/post/3lb5bb6qehw22?ref=share", "did", PLC),
        (PLC, "did", PLC),
        (PLC.upper(), "did", PLC),
        (f"at://{PLC}/app.bsky.feed.post/3lb5bb6qehw22", "did", PLC),
        ("did:web:hopital-exemple.fr", "did", "did:web:hopital-exemple.fr"),
    ],
)
def test_a_pasted_account_reads_as_its_handle_or_did(pasted: str, kind: str, value: str) -> None:
    ref = parse_actor(pasted)
    assert isinstance(ref, ActorRef), ref
    assert (ref.kind, ref.value, ref.raw) == (kind, value, pasted)


@pytest.mark.parametrize(
    ("pasted", "reason", "hint"),
    [
        ("", ActorReason.EMPTY, "nothing"),
        ("   ", ActorReason.EMPTY, "nothing"),
        ("CHU de Toulouse", ActorReason.NOT_A_HANDLE, "discover"),
        ("chu-toulouse", ActorReason.NO_DOMAIN, "chu-toulouse.bsky.social"),
        ("chu_toulouse.bsky.social", ActorReason.NOT_A_HANDLE, "valid handle"),
        ("-chu.bsky.social", ActorReason.NOT_A_HANDLE, "valid handle"),
        ("chu.123", ActorReason.NOT_A_HANDLE, "letter"),
        ("hopital.local", ActorReason.RESERVED_TLD, ".local"),
        ("chu.example", ActorReason.RESERVED_TLD, ".example"),
        ("did:plc:tooshort", ActorReason.BAD_DID, "24"),
        ("did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK", ActorReason.UNSUPPORTED_DID, "did:key"),
        ("https://twitter.com/chu_toulouse", ActorReason.BAD_URL, "twitter.com"),
        ("https://bsky.app/search?q=chu", ActorReason.BAD_URL, "profile"),
    ],
)
def test_garbage_is_rejected_with_a_reason(pasted: str, reason: ActorReason, hint: str) -> None:
    rejected = parse_actor(pasted)
    assert isinstance(rejected, ActorRejected), rejected
    assert rejected.reason is reason
    assert hint in rejected.detail
    assert repr(pasted) in str(rejected)


def test_the_same_account_pasted_twice_is_kept_once_in_input_order() -> None:
    parsed = parse_actors(["@B.bsky.social", "a.bsky.social", "https://bsky.app/profile/b.bsky.social", "x"])
    assert [r.value for r in parsed.refs] == ["b.bsky.social", "a.bsky.social"]
    assert parsed.refs[0].raw == "@B.bsky.social"
    assert [r.raw for r in parsed.rejected] == ["x"]


def test_pasted_text_gives_account_tokens_and_names_whole_lines() -> None:
    text = """# établissements
    CHU Toulouse, @chu-toulouse.bsky.social
    aphp.fr; https://bsky.app/profile/institut-curie.org  # Paris

    Hôpital sans compte
    """
    assert pasted_tokens(text) == [
        "@chu-toulouse.bsky.social",
        "aphp.fr",
        "https://bsky.app/profile/institut-curie.org",
        "Hôpital sans compte",
    ]
