"""Watch terms (issue 16): folding, word boundaries, hashtags, the one automaton, bad terms cells
and files, and name_mention events from both wires (a tagged account counted once)."""

from __future__ import annotations

from pathlib import Path

import ahocorasick
import pytest

from relay.jetstream_convert import convert_frame
from relay.script import POST, FrameScript
from schemas import Event, Kind
from schemas.accounts import Account, accounts_csv, parse_accounts
from schemas.errors import RegistryError
from schemas.terms import merge_terms, normalize, parse_terms_file, split_terms
from streamer.filter import MENTIONS, SKIP
from streamer.frames import Envelope
from streamer.names import NameMatcher
from streamer.wire import JetstreamWire, RelayWire, Wire

A = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"  # CHU de Toulouse (tracked)
B = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"  # AP-HP (tracked)
X = "did:plc:xxxxxxxxxxxxxxxxxxxxxxxx"  # somebody
TRACKED = {A, B}
TERMS = {
    A: ["CHU de Toulouse", "CHU Toulouse", "#CHUToulouse"],
    B: ["AP-HP", "APHP", "Hôpital Necker", "hopital necker"],
}


def names(text: str, terms: dict[str, list[str]] | None = None) -> list[tuple[str, str]]:
    return [(h.did, h.term) for h in NameMatcher(terms or TERMS).find(text)]


# -- folding and matching -------------------------------------------------------------------------
def test_normalize_folds_case_accents_ligatures_and_white_space() -> None:
    assert normalize("Hôpital  NECKER\n– Enfants") == "hopital necker – enfants"
    assert normalize("ﬁn de l'Œdème, Straße") == "fin de l'œdeme, strasse"
    assert normalize("Ça Déborde À L'HÔPITAL") == "ca deborde a l'hopital"
    assert normalize("plain ascii") == "plain ascii"


def test_a_term_matches_whatever_the_case_and_accents_on_either_side() -> None:
    assert names("Longue attente à l'HÔPITAL NECKER ce soir") == [(B, "Hôpital Necker")]
    assert names("hopital necker, encore", {B: ["Hôpital Necker"]}) == [(B, "Hôpital Necker")]
    assert names("le chu de toulouse recrute") == [(A, "CHU de Toulouse")]
    assert names("Le CHU\nde   Toulouse") == [(A, "CHU de Toulouse")]  # white space runs are one space


def test_a_term_matches_on_word_boundaries_only() -> None:
    terms = {A: ["CHU"], B: ["AP-HP"]}
    assert names("CHUV de Lausanne, xCHU, CHU_x", terms) == []
    assert names("au CHU.", terms) == [(A, "CHU")]
    assert names("(CHU)", terms) == [(A, "CHU")]
    assert names("l'AP-HP!", terms) == [(B, "AP-HP")]
    assert names("AP-HPx", terms) == []
    assert names("chu", terms) == [(A, "CHU")]  # the whole text


def test_hashtags_match_and_a_plain_term_matches_its_hashtag_form() -> None:
    assert names("Merci #CHUToulouse !") == [(A, "#CHUToulouse")]
    assert names("Merci #chutoulouse") == [(A, "#CHUToulouse")]
    assert names("CHUToulouse sans dièse") == []  # `#CHUToulouse` is the hashtag only
    assert names("Grève à l'#APHP") == [(B, "APHP")]  # `APHP` also matches `#APHP`
    assert names("#APHPfoo et #CHUToulouseNord") == []
    assert names("mot#CHUToulouse") == []


def test_each_account_counts_once_per_post_and_a_shared_term_counts_for_both() -> None:
    text = "Le CHU de Toulouse (CHU Toulouse, #CHUToulouse) et l'AP-HP"
    assert names(text) == [(A, "CHU de Toulouse"), (B, "AP-HP")]
    assert names("Hôpital Necker", {A: ["Necker"], B: ["Hôpital Necker"]}) == [
        (B, "Hôpital Necker"),
        (A, "Necker"),
    ]


def test_every_term_lives_in_one_automaton() -> None:
    matcher = NameMatcher(TERMS)
    automaton = matcher._automaton
    assert isinstance(automaton, ahocorasick.Automaton)
    # `Hôpital Necker` and `hopital necker` fold to one key
    assert len(automaton) == 6
    assert sorted(automaton.keys()) == sorted({normalize(t) for terms in TERMS.values() for t in terms})
    assert not NameMatcher({})
    assert NameMatcher({}).find("CHU de Toulouse") == []


# -- terms cells and the terms file ---------------------------------------------------------------
def test_a_terms_cell_is_split_trimmed_and_deduplicated() -> None:
    assert split_terms(" CHU de Toulouse ; CHU Toulouse;#CHUToulouse ;chu toulouse") == (
        ("CHU de Toulouse", "CHU Toulouse", "#CHUToulouse"),
        [],
    )
    assert split_terms("") == ((), [])


def test_bad_terms_cells_are_all_listed_with_their_lines() -> None:
    text = (
        "did,handle,name,terms\n"
        f'{A},chu.example.fr,CHU,"CHU de Toulouse;;CHU Toulouse"\n'
        f"{B},aphp.example.fr,AP-HP,AP\n"
        f'did:plc:cccccccccccccccccccccccc,c.example.fr,C,"#a;C#HU;---;ok term"\n'
    )
    with pytest.raises(RegistryError) as info:
        parse_accounts(text, "accounts.csv")
    message = str(info.value)
    assert message.startswith("accounts.csv: line 2: empty term in terms 'CHU de Toulouse;;CHU Toulouse'")
    assert "line 3: term 'AP' is shorter than 3 characters" in message
    assert "line 4: term '#a' is shorter than 3 characters" in message
    assert "line 4: malformed term 'C#HU' (# only as the first character, for a hashtag)" in message
    assert "line 4: malformed term '---' (no letter or digit)" in message
    assert message.count("line ") == 5


def test_terms_survive_a_rewrite_of_the_accounts_file_and_are_left_out_when_none() -> None:
    accounts = parse_accounts(
        "did,handle,name,terms\n"
        f'{A},chu.example.fr,CHU,"CHU de Toulouse;#CHUToulouse"\n'
        f"{B},aphp.example.fr,AP-HP,\n"
    )
    assert accounts[0].terms == ("CHU de Toulouse", "#CHUToulouse")
    assert accounts[1].terms == ()
    assert parse_accounts(accounts_csv(accounts)) == accounts
    plain = [Account(A, "chu.example.fr", "CHU")]
    assert accounts_csv(plain).startswith("did,handle,name,category,region,followers\n")


def test_a_terms_file_names_accounts_by_did_or_handle() -> None:
    accounts = [(A, "chu.example.fr"), (B, "aphp.example.fr")]
    text = f'term,account\nCHU Purpan,{A}\nHôpital Necker,@APHP.example.fr\n"Necker, Enfants malades",{B}\n'
    assert parse_terms_file(text, accounts) == {
        A: ("CHU Purpan",),
        B: ("Hôpital Necker", "Necker, Enfants malades"),
    }
    semicolons = "term;account\nCHU Purpan;chu.example.fr\n"
    assert parse_terms_file(semicolons, accounts) == {A: ("CHU Purpan",)}


def test_a_bad_terms_file_lists_every_problem_with_its_line() -> None:
    accounts = [(A, "chu.example.fr")]
    text = (
        "term,account\nCH,chu.example.fr\nurgences saturées,\n"
        "CHU Purpan,unknown.example.fr\n,chu.example.fr\n"
    )
    with pytest.raises(RegistryError) as info:
        parse_terms_file(text, accounts, "terms.csv")
    assert str(info.value) == (
        "terms.csv: line 2: term 'CH' is shorter than 3 characters; "
        "line 3: term 'urgences saturées' has no account (a DID or handle of the accounts file); "
        "line 4: account 'unknown.example.fr' is not in the accounts file; "
        "line 5: empty term"
    )
    with pytest.raises(RegistryError, match="line 1: expected the header term,account"):
        parse_terms_file("terme,compte\n", accounts, "terms.csv")


def test_terms_of_both_sources_merge_once_per_account(tmp_path: Path) -> None:
    merged = merge_terms({A: ("CHU de Toulouse",), B: ()}, {A: ("chu de toulouse", "CHU Purpan")})
    assert merged == {A: ("CHU de Toulouse", "CHU Purpan")}


# -- name_mention events, both wires --------------------------------------------------------------
def scenario() -> tuple[FrameScript, dict[str, str]]:
    s = FrameScript()
    uris = {
        "named": s.post(X, "Six heures d'attente aux urgences du CHU de Toulouse"),
        "tagged": s.post(X, "Merci au CHU Toulouse !", mentions=(A,)),
        "both": s.post(X, "#CHUToulouse et l'hôpital Necker", mentions=(A,)),
        "none": s.post(X, "Rien à voir: CHUV, Lausanne"),
        "self": s.post(A, "Le CHU de Toulouse recrute"),
        "long": s.post(X, "blabla " * 60 + "AP-HP"),
    }
    s.commit(
        X,
        [
            ("create", f"{POST}/3kaaaaaaaaaa1", _record("fil 1/2")),
            ("create", f"{POST}/3kaaaaaaaaaa2", _record("fil 2/2: l'APHP répond")),
        ],
    )
    s.commit(
        X,
        [
            ("create", f"{POST}/3kaaaaaaaaaa3", _record("rien 1/2")),
            ("create", f"{POST}/3kaaaaaaaaaa4", _record("rien 2/2")),
        ],
    )
    s.like(X, uris["named"])  # not a post
    return s, uris


def _record(text: str) -> dict[str, object]:
    return {"$type": POST, "text": text, "createdAt": "2026-11-02T08:00:00Z", "langs": ["fr"]}


def run_wire(wire: Wire, frames: list[bytes], matcher: NameMatcher | None) -> tuple[list[Event], list[int]]:
    """What the Streamer does with each frame: classify, then decode the candidates."""
    frame_filter = wire.new_filter(TRACKED, (), names=matcher)
    events: list[Event] = []
    verdicts: list[int] = []
    for frame in frames:
        verdict = frame_filter.classify(frame)
        verdicts.append(verdict)
        if verdict == SKIP:
            continue
        decoded = wire.decode(
            frame, TRACKED, lambda _a, _p: None, need_records=verdict == MENTIONS, names=matcher
        )
        assert not isinstance(decoded, Envelope)
        events.extend(decoded[1].events)
    return events, verdicts


def jetstream_frames(frames: list[bytes]) -> list[bytes]:
    out = []
    for frame in frames:
        for pending in convert_frame(frame):
            text = pending.v2(len(out) + 1, 1_700_000_000_000_000 + len(out))
            if text is not None:
                out.append(text)
    return out


def mentions_of(events: list[Event]) -> list[tuple[str, str, str, str | None]]:
    return [
        (e.kind.value, e.subject_did, (e.uri or "").rsplit("/", 1)[-1], e.term)
        for e in events
        if e.kind in (Kind.NAME_MENTION, Kind.MENTION)
    ]


@pytest.mark.parametrize("wire_name", ["relay", "jetstream"])
def test_posts_by_anyone_naming_an_account_are_name_mentions_counted_once(wire_name: str) -> None:
    s, uris = scenario()
    frames = s.frames if wire_name == "relay" else jetstream_frames(s.frames)
    wire: Wire = RelayWire() if wire_name == "relay" else JetstreamWire("jetstream2@h", compress=False)
    events, _ = run_wire(wire, frames, NameMatcher(TERMS))
    rkey = {name: uri.rsplit("/", 1)[-1] for name, uri in uris.items()}
    assert mentions_of(events) == [
        ("name_mention", A, rkey["named"], "CHU de Toulouse"),
        ("mention", A, rkey["tagged"], None),  # tagged and named: the mention only
        ("mention", A, rkey["both"], None),
        ("name_mention", B, rkey["both"], "Hôpital Necker"),
        ("name_mention", B, rkey["long"], "AP-HP"),
        ("name_mention", B, "3kaaaaaaaaaa2", "APHP"),
    ]
    named = next(e for e in events if e.kind is Kind.NAME_MENTION)
    assert (named.actor_did, named.target_did, named.direction.value) == (X, A, "to")
    assert named.text == "Six heures d'attente aux urgences du CHU de Toulouse"
    assert named.uri == uris["named"]


def test_without_terms_the_same_posts_yield_no_name_mention() -> None:
    s, _ = scenario()
    events, _ = run_wire(RelayWire(), s.frames, None)
    assert [e for e in events if e.kind is Kind.NAME_MENTION] == []


def test_the_relay_filter_decodes_only_the_posts_that_name_an_account() -> None:
    s, _ = scenario()
    _, with_terms = run_wire(RelayWire(), s.frames, NameMatcher(TERMS))
    _, without = run_wire(RelayWire(), s.frames, None)
    # named, tagged, both, none, self (tracked author), long, thread naming, thread not, like
    assert with_terms == [MENTIONS, MENTIONS, MENTIONS, SKIP, MENTIONS, MENTIONS, MENTIONS, SKIP, SKIP]
    assert without == [SKIP, MENTIONS, MENTIONS, SKIP, MENTIONS, SKIP, SKIP, SKIP, SKIP]


def test_updates_and_deletes_of_a_naming_post_are_not_mentions() -> None:
    s = FrameScript()
    uri = s.post(X, "CHU de Toulouse")
    path = uri.split("/", 3)[3]
    s.commit(X, [("update", path, _record("CHU de Toulouse, édité"))])
    s.delete(uri)
    events, _ = run_wire(RelayWire(), s.frames, NameMatcher(TERMS))
    assert [(e.kind.value, e.action.value) for e in events] == [("name_mention", "create")]
