"""The ISO 20022 pain.001 bank file of a release, and the IBAN checks of a contract."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from releasetools import Certified, release_cli, write_contract

from robocell.errors import RobocellError
from robocell.eval.release.contract import load_contract
from robocell.eval.release.settlement import NAMESPACE, pain001_xml, parse_pain001

PAIN = Path("payment.pain001.xml")


def released(tmp_path: Path, certified: Certified, **changes) -> tuple[dict, bytes]:
    contract = write_contract(tmp_path, certified, **changes)
    assert release_cli(certified.passed, contract, certified.scripted, tmp_path) == 0
    instruction = json.loads((tmp_path / "payment.json").read_text())
    return instruction, (tmp_path / PAIN).read_bytes()


def test_the_bank_file_parses_back_to_the_instruction(tmp_path, certified):
    instruction, xml = released(tmp_path, certified)
    payment = parse_pain001(xml)
    assert (payment["amount"], payment["currency"]) == ("12500.10", "EUR")
    assert payment["debtor"]["iban"] == instruction["payer"]["account"]
    assert payment["creditor"]["iban"] == instruction["payee"]["account"]
    assert payment["creditor"]["name"] == "Cellworks Robotics Ltd"
    assert payment["end_to_end_id"] == instruction["idempotency_key"][:35]
    assert payment["message_id"] == payment["end_to_end_id"]
    assert payment["remittance"] == ["contract ACME-WELD-7 milestone M1"]


def test_the_bank_file_is_a_pain_001_001_09_document(tmp_path, certified):
    _, xml = released(tmp_path, certified)
    root = ET.fromstring(xml)
    assert root.tag == f"{{{NAMESPACE}}}Document"
    assert NAMESPACE == "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"
    header = root.find(f"{{{NAMESPACE}}}CstmrCdtTrfInitn/{{{NAMESPACE}}}GrpHdr")
    assert header is not None
    assert header.findtext(f"{{{NAMESPACE}}}NbOfTxs") == "1"
    assert header.findtext(f"{{{NAMESPACE}}}CtrlSum") == "12500.10"
    assert header.findtext(f"{{{NAMESPACE}}}CreDtTm").endswith("Z")


def test_a_non_iban_account_goes_out_as_an_account_id(tmp_path, certified):
    buyer = {"name": "ACME", "account": "internal-7"}
    _, xml = released(tmp_path, certified, buyer=buyer)
    debtor = parse_pain001(xml)["debtor"]
    assert (debtor["iban"], debtor["account_id"]) == (None, "internal-7")


def test_a_retry_writes_nothing_new(tmp_path, certified):
    _, first = released(tmp_path, certified)
    stamp = (tmp_path / PAIN).stat().st_mtime_ns
    contract = tmp_path / "contract.yaml"
    assert release_cli(certified.passed, contract, certified.scripted, tmp_path) == 0
    assert (tmp_path / PAIN).read_bytes() == first
    assert (tmp_path / PAIN).stat().st_mtime_ns == stamp


def test_another_file_at_the_bank_file_path_is_refused_before_recording(tmp_path, certified):
    (tmp_path / PAIN).write_text("<Document/>")
    contract = write_contract(tmp_path, certified)
    assert release_cli(certified.passed, contract, certified.scripted, tmp_path) == 2
    assert (tmp_path / PAIN).read_text() == "<Document/>"
    assert not (tmp_path / "payment.json").exists()


def test_an_instruction_of_other_parties_is_refused(tmp_path, certified):
    instruction, _ = released(tmp_path, certified)
    other = write_contract(tmp_path / "other", certified, supplier={"name": "X", "account": "y"})
    with pytest.raises(RobocellError, match="not ACME-WELD-7/M1's buyer and supplier"):
        pain001_xml(instruction, load_contract(other))


@pytest.mark.parametrize(
    ("party", "account", "message"),
    [
        ("supplier", "GB29NWBK60161331926818", r"supplier.account: invalid IBAN \(checksum\)"),
        ("buyer", "DE89 3704 0044 0532 0130 01", r"buyer.account: invalid IBAN \(checksum\)"),
        ("buyer", "DE8937040044053201300", r"buyer.account: invalid IBAN \(length\)"),
        ("supplier", "XX89370400440532013000", r"supplier.account: invalid IBAN \(country"),
        ("supplier", "acct-" + "9" * 30, r"supplier.account: an account id of at most 34"),
    ],
)
def test_an_invalid_iban_is_refused_naming_the_field(tmp_path, certified, party, account, message):
    path = write_contract(tmp_path, certified, **{party: {"name": "P", "account": account}})
    with pytest.raises(RobocellError, match=message):
        load_contract(path)


@pytest.mark.parametrize("account", ["GB82 WEST 1234 5698 7654 32", "acct-42", "DE1"])
def test_valid_ibans_and_opaque_account_ids_are_accepted(tmp_path, certified, account):
    path = write_contract(tmp_path, certified, supplier={"name": "P", "account": account})
    assert load_contract(path).supplier.account == account


def test_the_example_contract_has_valid_ibans():
    contract = load_contract(Path(__file__).parents[1] / "configs/contracts/example.yaml")
    assert contract.buyer.account.startswith("DE89")


def test_bics_go_into_the_bank_file_and_leave_the_contract_digest_alone(tmp_path, certified):
    from robocell.eval.release.contract import contract_digest

    plain = load_contract(write_contract(tmp_path / "plain", certified))
    supplier = {"name": "Cellworks Robotics Ltd", "account": "GB29NWBK60161331926819"}
    buyer = {"name": "ACME Fabrication GmbH", "account": "DE89370400440532013000"}
    _, xml = released(tmp_path, certified, supplier=supplier | {"bic": "NWBK GB 2L"},
                      buyer=buyer | {"bic": "COBADEFFXXX"})  # fmt: skip
    payment = parse_pain001(xml)
    assert (payment["debtor"]["bic"], payment["creditor"]["bic"]) == ("COBADEFFXXX", "NWBKGB2L")
    # without BICs the agents are NOTPROVIDED and the contract hashes as before BICs existed
    assert parse_pain001(released(tmp_path / "nobic", certified)[1])["debtor"]["bic"] is None
    with_empty = write_contract(tmp_path / "empty", certified, buyer=buyer | {"bic": ""})
    assert contract_digest(load_contract(with_empty)) == contract_digest(plain)


@pytest.mark.parametrize(
    ("bic", "message"),
    [("COBADEF", r"buyer.bic: invalid BIC \(length\)"),
     ("COBAZZFF", r"buyer.bic: invalid BIC \(country code\)")],
)  # fmt: skip
def test_an_invalid_bic_is_refused_naming_the_field(tmp_path, certified, bic, message):
    buyer = {"name": "P", "account": "DE89370400440532013000", "bic": bic}
    with pytest.raises(RobocellError, match=message):
        load_contract(write_contract(tmp_path, certified, buyer=buyer))
