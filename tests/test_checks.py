"""The checks of ``secdns verify`` (secdns.checks): pure functions over records.

The broken-zone corpus in tests/zones/broken/ is run through the checks and,
side by side, through the real named-checkzone: whatever BIND rejects must be
an error here, and every diagnostic BIND prints must be named by a check.
DNSSEC checks run on zones signed in the test, by dnspython (NSEC) and by
dnssec-signzone (NSEC3).
"""

from __future__ import annotations

import datetime
import re
import subprocess
import time
from pathlib import Path

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataset
import dns.rdatatype
import dns.zone
import dns.zonetypes
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from servers import ZONES_DIR, need_binary

from secdns import checks, wire
from secdns.checks import CHECKS, Finding, Severity, UnknownCheck, select, sort_findings
from secdns.checks.dnssec import applicable_checks, check_dnssec
from secdns.checks.integrity import check_integrity
from secdns.checks.zoneindex import ZoneIndex, is_absolute_text, name_key
from secdns.errors import ZoneFileError
from secdns.masterfile import read_master

ORIGIN = dns.name.from_text("example.com.")
BROKEN = ZONES_DIR / "broken"
EXAMPLE = (ZONES_DIR / "example.com.zone").read_text()
NOW = 1_800_000_000.0  # a fixed "now" for signatures: 2027-01-15
DAY = 86400

E, W = Severity.ERROR, Severity.WARNING


def read(text: str, origin: dns.name.Name = ORIGIN) -> list[wire.Record]:
    return read_master(text, origin, filename="test.zone").records


def found(findings: list[Finding]) -> set[tuple[str, Severity, str, str | None]]:
    return {(f.check, f.severity, f.owner, f.rdtype) for f in findings}


def integrity(text: str) -> set[tuple[str, Severity, str, str | None]]:
    return found(check_integrity(ORIGIN, read(text)))


HEAD = """$ORIGIN example.com.
$TTL 3600
@ SOA ns1 hostmaster 1 7200 900 1209600 300
@ NS ns1
ns1 A 192.0.2.53
"""

# --- the broken-zone corpus ------------------------------------------------------------------

# What verify finds in each file of tests/zones/broken/ (parse-error.zone apart).
CORPUS: dict[str, set[tuple[str, Severity, str, str | None]]] = {
    "no-soa.zone": {("integrity.soa", E, "example.com.", "SOA")},
    "two-soa.zone": {("integrity.soa", E, "example.com.", "SOA")},
    "soa-below-apex.zone": {("integrity.soa", E, "sub.example.com.", "SOA")},
    "soa-timers.zone": {("integrity.soa-timers", W, "example.com.", "SOA")},
    "no-apex-ns.zone": {("integrity.apex-ns", E, "example.com.", "NS")},
    "cname-and-other-data.zone": {
        ("integrity.cname-and-other-data", E, "www.example.com.", "CNAME")
    },
    "cname-at-apex.zone": {("integrity.cname-and-other-data", E, "example.com.", "CNAME")},
    "two-cnames.zone": {("integrity.cname-and-other-data", E, "www.example.com.", "CNAME")},
    "dname-and-cname.zone": {("integrity.dname", E, "old.example.com.", "DNAME")},
    "two-dnames.zone": {("integrity.dname", E, "old.example.com.", "DNAME")},
    "data-below-dname.zone": {
        ("integrity.occluded", E, "www.old.example.com.", "A"),
        ("integrity.occluded", E, "www.old.example.com.", "TXT"),
    },
    "cname-loop.zone": {
        ("integrity.cname-loop", E, "a.example.com.", "CNAME"),
        ("integrity.cname-loop", E, "self.example.com.", "CNAME"),
    },
    "apex-ns-is-cname.zone": {("integrity.target-is-cname", E, "example.com.", "NS")},
    "targets-are-cnames.zone": {
        ("integrity.target-is-cname", W, "sub.example.com.", "NS"),
        ("integrity.target-is-cname", W, "example.com.", "MX"),
        ("integrity.target-is-cname", W, "_sip._tcp.example.com.", "SRV"),
    },
    "apex-ns-no-address.zone": {("integrity.target-address", E, "example.com.", "NS")},
    "targets-without-address.zone": {
        ("integrity.target-address", W, "sub.example.com.", "NS"),
        ("integrity.target-address", W, "example.com.", "MX"),
        ("integrity.target-address", W, "_sip._tcp.example.com.", "SRV"),
    },
    "missing-glue.zone": {("integrity.missing-glue", W, "sub.example.com.", "NS")},
    "occluded.zone": {
        ("integrity.occluded", W, "sub.example.com.", "TXT"),
        ("integrity.occluded", W, "www.sub.example.com.", "A"),
        ("integrity.occluded", W, "deep.sub.example.com.", "NS"),
    },
    "out-of-zone.zone": {("integrity.out-of-zone", W, "www.example.net.", "A")},
    "ttl-mismatch.zone": {("integrity.ttl-mismatch", W, "www.example.com.", "A")},
    "ds-at-apex.zone": {("integrity.ds", E, "example.com.", "DS")},
    "ds-not-at-delegation.zone": {("integrity.ds", W, "www.example.com.", "DS")},
    "wildcard-ns.zone": {("integrity.wildcard", E, "*.dyn.example.com.", "NS")},
    "wildcard-misuse.zone": {
        ("integrity.wildcard", W, "a.*.b.example.com.", None),
        ("integrity.wildcard", W, "*.w.example.com.", "DNAME"),
    },
    "bad-hostnames.zone": {
        ("integrity.hostname", W, "my_host.example.com.", "A"),
        ("integrity.hostname", W, "example.com.", "MX"),
        ("integrity.hostname", W, "sub.example.com.", "NS"),
        ("integrity.hostname", W, "sub2.example.com.", "NS"),
        ("integrity.hostname", W, "_x._tcp.example.com.", "SRV"),
    },
    "spf-without-txt.zone": {("integrity.spf", W, "example.com.", "SPF")},
}

# named-checkzone's diagnostics and the check that names the same problem.
BIND_DIAGNOSTICS: list[tuple[str, set[str]]] = [
    (r"CNAME and other data", {"integrity.cname-and-other-data", "integrity.dname"}),
    (
        r"multiple RRs of singleton type",
        {"integrity.soa", "integrity.cname-and-other-data", "integrity.dname"},
    ),
    (r"has 0 SOA records", {"integrity.soa"}),
    (r"SOA record not at top of zone", {"integrity.soa"}),
    (r"DS record at top of zone", {"integrity.ds"}),
    (r"has no NS records", {"integrity.apex-ns"}),
    (r"is a CNAME \(illegal\)", {"integrity.target-is-cname"}),
    (r"has no address records", {"integrity.target-address"}),
    (r"has no (REQUIRED|SIBLING) GLUE", {"integrity.missing-glue"}),
    (r"ignoring out-of-zone data", {"integrity.out-of-zone"}),
    (r"TTL set to prior TTL", {"integrity.ttl-mismatch"}),
    (r"bad (owner )?name \(check-names\)", {"integrity.hostname"}),
    (r"MX is an address|appears to be an address", {"integrity.hostname"}),
    (r"non-terminal wildcard|invalid NS owner name \(wildcard\)", {"integrity.wildcard"}),
    (r"found type SPF record but no SPF TXT record", {"integrity.spf"}),
    (r"bad dotted quad", {"integrity.parse"}),
]
# Lines that only say how loading went.
BIND_OUTCOME = re.compile(
    r"loaded serial|^OK$|not loaded due to errors|loading from master "
    r"file .* failed|file does not end with newline"
)


def corpus_files() -> list[str]:
    return sorted(path.name for path in BROKEN.glob("*.zone"))


def test_the_corpus_covers_every_integrity_check():
    assert set(corpus_files()) == set(CORPUS) | {"parse-error.zone"}
    covered = {check for expected in CORPUS.values() for check, *_ in expected}
    covered |= {"integrity.parse", "integrity.store"}  # (a file that does not parse; a store)
    assert covered == {c for c in CHECKS if c.startswith("integrity.")}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_findings(name):
    text = (BROKEN / name).read_text()
    assert integrity(text) == CORPUS[name]


def test_parse_error_names_the_line():
    path = BROKEN / "parse-error.zone"
    with pytest.raises(ZoneFileError) as caught:
        read_master(path.read_text(), ORIGIN, filename=str(path))
    assert caught.value.line == 8
    assert caught.value.message.startswith(f"{path}:8: ")


def named_checkzone(path: Path) -> tuple[int, list[str]]:
    program = need_binary("named-checkzone")
    # -i local: BIND's integrity checks without looking anything up in the DNS.
    done = subprocess.run(
        [program, "-i", "local", "example.com", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.returncode, [line for line in done.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("name", corpus_files())
def test_agreement_with_named_checkzone(name):
    path = BROKEN / name
    code, lines = named_checkzone(path)
    if name == "parse-error.zone":
        assert code != 0
        line = next(line for line in lines if "bad dotted quad" in line)
        with pytest.raises(ZoneFileError) as caught:
            read_master(path.read_text(), ORIGIN, filename=str(path))
        assert f"{path.name}:{caught.value.line}:" in line  # the same line number
        return
    findings = check_integrity(ORIGIN, read(path.read_text()))
    ours = {f.check for f in findings}
    # What BIND rejects, verify rejects.
    if code != 0:
        assert any(f.severity is Severity.ERROR for f in findings), (name, lines)
    # Every BIND diagnostic is named by a check (a warning at least).
    for line in lines:
        if BIND_OUTCOME.search(line):
            continue
        matches = [checks for pattern, checks in BIND_DIAGNOSTICS if re.search(pattern, line)]
        assert matches, f"unmapped named-checkzone diagnostic: {line}"
        assert ours & matches[0], (name, line, ours)
    # And where BIND loads the zone with only warnings, so does verify with BIND's checks.
    if code == 0:
        bind_named = set().union(
            *(c for p, c in BIND_DIAGNOSTICS if any(re.search(p, line) for line in lines))
        )
        assert not any(f.severity is Severity.ERROR and f.check in bind_named for f in findings), (
            name,
            lines,
        )


def test_a_clean_zone_has_no_findings_and_bind_agrees(tmp_path):
    assert check_integrity(ORIGIN, read(EXAMPLE)) == []
    path = tmp_path / "example.com.zone"
    path.write_text(EXAMPLE)
    code, lines = named_checkzone(path)
    assert code == 0 and lines[-1] == "OK" and len(lines) == 2, lines


# --- integrity details ---------------------------------------------------------------------


def test_cname_may_share_its_name_with_dnssec_records_only():
    assert integrity(HEAD + "www CNAME ns1\nwww NSEC ns1 CNAME RRSIG NSEC\n") == set()
    assert integrity(HEAD + "www CNAME ns1\nwww TXT hi\n") == {
        ("integrity.cname-and-other-data", E, "www.example.com.", "CNAME")
    }


def test_duplicate_records_are_not_two_cnames():
    assert integrity(HEAD + "www CNAME ns1\nwww CNAME NS1\n") == set()


def test_null_mx_and_null_srv_are_fine():
    assert integrity(HEAD + "@ MX 0 .\n_x._tcp SRV 0 0 0 .\n") == set()


def test_glue_at_and_below_a_cut_is_not_occluded():
    text = HEAD + "sub NS sub\nsub NS ns.sub\nsub A 192.0.2.5\nns.sub AAAA 2001:db8::5\n"
    assert integrity(text) == set()


def test_an_apex_dname_occludes_everything_below():
    text = HEAD.replace("@ NS ns1\nns1 A 192.0.2.53\n", "@ NS ns1.example.net.\n")
    assert integrity(text + "@ DNAME example.net.\nwww A 192.0.2.1\n") == {
        ("integrity.occluded", E, "www.example.com.", "A")
    }


def test_rrsig_ttls_are_compared_per_covered_type():
    sig = "{} 13 3 {} 20270101000000 20261201000000 1 example.com. AAAA"
    text = (
        HEAD + "www 300 A 192.0.2.1\nwww 60 AAAA 2001:db8::1\n"
        f"www 300 RRSIG {sig.format('A', 300)}\nwww 60 RRSIG {sig.format('AAAA', 60)}\n"
    )
    assert integrity(text) == set()
    text += f"www 120 RRSIG {sig.format('AAAA', 120)}\n"
    assert integrity(text) == {("integrity.ttl-mismatch", W, "www.example.com.", "RRSIG AAAA")}


def test_wildcard_address_owners_are_host_names():
    assert integrity(HEAD + "*.w A 192.0.2.1\n* A 192.0.2.2\n*.x-1 AAAA ::1\n") == set()
    assert integrity(HEAD + "-bad A 192.0.2.1\n") == {
        ("integrity.hostname", W, "-bad.example.com.", "A")
    }


def test_findings_name_absolute_owners_and_rfcs():
    (finding,) = check_integrity(ORIGIN, read(HEAD + "www CNAME ns1\nwww A 192.0.2.1\n"))
    assert finding.to_dict() == {
        "check": "integrity.cname-and-other-data",
        "severity": "error",
        "owner": "www.example.com.",
        "type": "CNAME",
        "message": "CNAME and other data (A) at one name",
        "rfc": "RFC 2181 10.1",
        "source": None,
    }


def test_records_from_a_transfer_check_the_same():
    # The same records as a transfer decodes them (secdns.wire), not from a file.
    from xfrwire import records

    assert check_integrity(ORIGIN, records(EXAMPLE, "example.com.")) == []
    broken = records(HEAD + "a CNAME b\nb CNAME a\n", "example.com.")
    assert found(check_integrity(ORIGIN, broken)) == {
        ("integrity.cname-loop", E, "a.example.com.", "CNAME")
    }


def test_zone_index_groups_by_owner_case_insensitively():
    index = ZoneIndex.build(
        ORIGIN, read(HEAD + "WWW A 192.0.2.1\nwww AAAA ::1\nx.example.net. A 192.0.2.9\n")
    )
    key = (b"com", b"example", b"www")
    assert [r.rdtype for r in index.group(key)] == [dns.rdatatype.A, dns.rdatatype.AAAA]
    assert [r.owner for r in index.out_of_zone] == ["x.example.net."]
    assert index.absolute("WWW") == "WWW.example.com." and index.absolute("@") == "example.com."


def test_name_keys():
    okey = (b"com", b"example")
    assert name_key("Mail", okey, ORIGIN) == (b"com", b"example", b"mail")
    assert name_key("mail.example.net.", okey, ORIGIN) == (b"net", b"example", b"mail")
    assert name_key("@", okey, ORIGIN) == okey and name_key(".", okey, ORIGIN) == ()
    assert name_key(r"a\.b", okey, ORIGIN) == (b"com", b"example", b"a.b")
    assert is_absolute_text("a.") and not is_absolute_text("a\\.") and is_absolute_text("a\\\\.")


# --- the catalogue -------------------------------------------------------------------------


def test_select_by_id_and_family():
    assert select() == frozenset(CHECKS)
    assert select(["dnssec"]) == {c for c in CHECKS if c.startswith("dnssec.")}
    assert select(["integrity.soa", "consistency"], ["consistency.content"]) == {
        "integrity.soa",
        "consistency.serial",
        "consistency.authoritative",
        "consistency.reachable",
    }
    assert select(exclude=["integrity"]) == {c for c in CHECKS if not c.startswith("integrity.")}
    with pytest.raises(UnknownCheck, match="unknown check 'integrity.sao'"):
        select(["integrity.sao"])


def test_findings_sort_in_catalogue_order():
    later = checks.SOA_TIMERS.warning("example.com.", "SOA", "x")
    earlier = checks.SOA.error("example.com.", "SOA", "y")
    assert sort_findings([later, earlier]) == [earlier, later]


# --- DNSSEC --------------------------------------------------------------------------------


class Signer:
    """An ED25519 KSK + ZSK pair, and a zone signed with them by dnspython (NSEC)."""

    def __init__(
        self,
        text: str = EXAMPLE,
        *,
        inception: float = NOW - DAY,
        expiration: float = NOW + 30 * DAY,
    ) -> None:
        self.ksk = ed25519.Ed25519PrivateKey.generate()
        self.zsk = ed25519.Ed25519PrivateKey.generate()
        self.ksk_dnskey = dns.dnssec.make_dnskey(self.ksk.public_key(), "ED25519", flags=257)
        self.zsk_dnskey = dns.dnssec.make_dnskey(self.zsk.public_key(), "ED25519")
        self.zone = dns.zone.from_text(text, ORIGIN, relativize=False)
        with self.zone.writer() as txn:
            dns.dnssec.sign_zone(
                self.zone,
                txn,
                keys=[(self.ksk, self.ksk_dnskey), (self.zsk, self.zsk_dnskey)],
                inception=inception,
                expiration=expiration,
            )

    def records(self) -> list[wire.Record]:
        return read(self.zone.to_text(want_origin=True))

    def resign(self, owner: str, rdtype: str, *, inception: float, expiration: float) -> None:
        name = dns.name.from_text(owner, ORIGIN)
        rrset = self.zone.find_rrset(name, rdtype)
        rrsig = dns.dnssec.sign(
            rrset,
            self.zsk,
            ORIGIN,
            self.zsk_dnskey,
            inception=inception,
            expiration=expiration,
            origin=ORIGIN,
        )
        with self.zone.writer() as txn:
            txn.replace(name, dns.rdataset.from_rdata(rrset.ttl, rrsig))

    def edit(self, owner: str, rdtype: str, *rdatas: str) -> None:
        """Replace an RRset without re-signing it (rdatas empty: delete it)."""
        name = dns.name.from_text(owner, ORIGIN)
        existing = self.zone.get_rdataset(name, rdtype)
        ttl = existing.ttl if existing is not None else 300
        with self.zone.writer() as txn:
            if rdatas:
                txn.replace(name, dns.rdataset.from_text("IN", rdtype, ttl, *rdatas))
            else:
                txn.delete(name, rdtype)


def dnssec(records: list[wire.Record], **kw) -> set[tuple[str, Severity, str, str | None]]:
    return found(check_dnssec(ORIGIN, records, now=kw.pop("now", NOW), **kw))


@pytest.fixture(scope="module")
def signed() -> list[wire.Record]:
    return Signer().records()


def test_a_signed_zone_passes(signed):
    assert applicable_checks(signed) == {
        "dnssec.rrsig-validity",
        "dnssec.signature",
        "dnssec.nsec-chain",
    }
    assert dnssec(signed) == set()
    assert check_integrity(ORIGIN, signed) == []


def test_an_unsigned_zone_has_nothing_for_dnssec():
    records = read(EXAMPLE)
    assert applicable_checks(records) == frozenset()
    assert check_dnssec(ORIGIN, records, now=NOW) == []


def test_expired_and_expiring_signatures():
    signer = Signer()
    signer.resign("www", "A", inception=NOW - 20 * DAY, expiration=NOW - DAY)
    signer.resign("mail", "A", inception=NOW - DAY, expiration=NOW + 2 * DAY)
    signer.resign("ns1", "A", inception=NOW + DAY, expiration=NOW + 30 * DAY)
    records = signer.records()
    assert dnssec(records) == {
        ("dnssec.rrsig-validity", E, "www.example.com.", "RRSIG A"),
        ("dnssec.rrsig-validity", W, "mail.example.com.", "RRSIG A"),
        ("dnssec.rrsig-validity", E, "ns1.example.com.", "RRSIG A"),
    }
    messages = {f.owner: f.message for f in check_dnssec(ORIGIN, records, now=NOW)}
    expired = datetime.datetime.fromtimestamp(NOW - DAY, datetime.UTC)
    assert messages["www.example.com."].endswith(f"expired {expired:%Y-%m-%d %H:%M:%S}Z")
    assert "expires in 2.0 days" in messages["mail.example.com."]
    assert "not valid before" in messages["ns1.example.com."]
    # --sig-warn-days 1: two days left is fine
    assert ("dnssec.rrsig-validity", W, "mail.example.com.", "RRSIG A") not in dnssec(
        records, sig_warn_days=1
    )


def test_a_tampered_record_fails_its_signature():
    signer = Signer()
    signer.edit("www", "A", "192.0.2.80", "192.0.2.99")
    (finding,) = check_dnssec(ORIGIN, signer.records(), now=NOW)
    assert (finding.check, finding.severity, finding.owner, finding.rdtype) == (
        "dnssec.signature",
        E,
        "www.example.com.",
        "A",
    )
    assert "does not validate" in finding.message


def test_an_unsigned_rrset_and_its_missing_bitmap_bit():
    signer = Signer()
    signer.edit("www", "TXT", '"added after signing"')
    assert dnssec(signer.records()) == {
        ("dnssec.signature", E, "www.example.com.", "TXT"),
        ("dnssec.nsec-chain", E, "www.example.com.", "NSEC"),
    }


def test_a_signature_by_an_unknown_key():
    signer = Signer()
    stranger = ed25519.Ed25519PrivateKey.generate()
    dnskey = dns.dnssec.make_dnskey(stranger.public_key(), "ED25519")
    name = dns.name.from_text("www", ORIGIN)
    rrset = signer.zone.find_rrset(name, "A")
    rrsig = dns.dnssec.sign(
        rrset,
        stranger,
        ORIGIN,
        dnskey,
        inception=NOW - DAY,
        expiration=NOW + DAY * 30,
        origin=ORIGIN,
    )
    with signer.zone.writer() as txn:
        txn.replace(name, dns.rdataset.from_rdata(rrset.ttl, rrsig))
    (finding,) = check_dnssec(ORIGIN, signer.records(), now=NOW)
    assert finding.check == "dnssec.signature" and finding.rdtype == "A"
    assert "no such key in the apex DNSKEY set" in finding.message


def test_a_broken_nsec_chain():
    signer = Signer()
    # Remove a name with all its records: the NSEC before it now points nowhere.
    with signer.zone.writer() as txn:
        txn.delete(dns.name.from_text("host", ORIGIN))
    # And remove just the NSEC of another name.
    signer.edit("txt", "NSEC")
    findings = check_dnssec(ORIGIN, signer.records(), now=NOW)
    assert found(findings) >= {
        ("dnssec.nsec-chain", E, "alias.example.com.", "NSEC"),  # next was host
        ("dnssec.nsec-chain", E, "txt.example.com.", "NSEC"),
    }
    messages = [f.message for f in findings if f.check == "dnssec.nsec-chain"]
    assert any(
        "next name is host.example.com., expected legacy.example.com." in m for m in messages
    ), messages
    assert any(m.startswith("no NSEC record") for m in messages)


def test_a_signed_zone_without_a_chain(signed):
    unchained = [
        r
        for r in signed
        if r.rdtype != dns.rdatatype.NSEC
        and not (r.rdtype == dns.rdatatype.RRSIG and r.rdata.startswith("NSEC "))
    ]
    assert dnssec(unchained) == {("dnssec.nsec-chain", E, "example.com.", None)}


def bind_signed(tmp_path: Path, *extra: str) -> str:
    """The example zone signed by dnssec-signzone with NSEC3 (no salt, 0 iterations)."""
    keygen = need_binary("dnssec-keygen")
    signzone = need_binary("dnssec-signzone")
    for flags in ([], ["-f", "KSK"]):
        subprocess.run(
            [keygen, "-q", "-K", str(tmp_path), "-a", "ED25519", *flags, "example.com"],
            check=True,
            capture_output=True,
            timeout=30,
        )
    unsigned = tmp_path / "example.com.zone"
    unsigned.write_text(EXAMPLE)
    signed = tmp_path / "example.com.signed"
    subprocess.run(
        [
            signzone,
            "-q",
            "-S",
            "-K",
            str(tmp_path),
            "-d",
            str(tmp_path),
            "-o",
            "example.com",
            "-3",
            "-",
            "-H",
            "0",
            "-s",
            "now-1h",
            "-e",
            "now+30d",
            *extra,
            "-f",
            str(signed),
            str(unsigned),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return signed.read_text()


def test_nsec3_signed_by_bind(tmp_path):
    text = bind_signed(tmp_path)
    records = read(text)
    assert any(r.rdtype == dns.rdatatype.NSEC3 for r in records)
    now = time.time()
    assert check_dnssec(ORIGIN, records, now=now) == []
    # Drop the NSEC3 (and its signature) that stands for www.example.com.
    digest = dns.dnssec.nsec3_hash("www.example.com.", b"", 0, 1).lower()
    gone = [r for r in records if r.key[-1] != digest.encode()]
    assert len(gone) == len(records) - 2
    findings = check_dnssec(ORIGIN, gone, now=now)
    assert {(f.check, f.owner) for f in findings} >= {("dnssec.nsec-chain", "www.example.com.")}
    assert any("the chain is not closed" in f.message for f in findings)


# --- ZONEMD --------------------------------------------------------------------------------


def with_zonemd(
    text: str = EXAMPLE, *, hash_algorithm: int = 1, tamper: bool = False, serial_bump: bool = False
) -> list[wire.Record]:
    zone = dns.zone.from_text(text, ORIGIN, relativize=False)
    zonemd = zone.compute_digest(dns.zonetypes.DigestHashAlgorithm.SHA384)
    if hash_algorithm != 1:
        zonemd = dns.rdata.from_text(
            "IN", "ZONEMD", f"{zonemd.serial} 1 {hash_algorithm} " + zonemd.digest.hex()
        )
    with zone.writer() as txn:
        txn.add(ORIGIN, 3600, zonemd)
        if tamper:
            txn.replace(
                dns.name.from_text("www", ORIGIN),
                dns.rdataset.from_text("IN", "A", 3600, "192.0.2.66"),
            )
        if serial_bump:
            soa = zone.get_soa(txn)
            txn.replace(ORIGIN, dns.rdataset.from_rdata(3600, soa.replace(serial=soa.serial + 1)))
    return read(zone.to_text(want_origin=True))


def test_zonemd_right_and_wrong():
    assert applicable_checks(with_zonemd()) == {"dnssec.zonemd"}
    assert check_dnssec(ORIGIN, with_zonemd(), now=NOW) == []
    (wrong,) = check_dnssec(ORIGIN, with_zonemd(tamper=True), now=NOW)
    assert (wrong.check, wrong.severity, wrong.owner, wrong.rdtype) == (
        "dnssec.zonemd",
        E,
        "example.com.",
        "ZONEMD",
    )
    assert wrong.message.startswith("SHA384 digest does not match the zone's content")
    (stale,) = check_dnssec(ORIGIN, with_zonemd(serial_bump=True), now=NOW)
    assert "ZONEMD serial 2024010101 is not the SOA serial 2024010102" in stale.message
    (unknown,) = check_dnssec(ORIGIN, with_zonemd(hash_algorithm=240), now=NOW)
    assert unknown.severity is W and "cannot be verified" in unknown.message
