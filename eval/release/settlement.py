"""The bank file of a release: the payment instruction as an ISO 20022 pain.001.001.09 message.

:func:`pain001_xml` turns the RELEASED instruction into a CustomerCreditTransferInitiation that
a bank or payment hub accepts: one group header, one payment (the buyer's account is debited),
one credit transfer to the supplier. The message is built from pyiso20022's generated classes
and written by xsdata, so every element, its order and its namespace come from the schema, not
from a template. :func:`parse_pain001` reads such a file back with the same classes.

ISO 20022 identifiers (MsgId, PmtInfId, EndToEndId) are Max35Text, and the idempotency key is 64
hex digits (sha256 of contract and milestone id): all three are the key's first 35 hex digits,
140 bits — still unique per milestone, and a bank that deduplicates on EndToEndId refuses a
second file for the same milestone. An account that is not an IBAN goes out as a proprietary
account id (``Othr/Id``); without a BIC the agents are ``NOTPROVIDED``, as the EPC rulebook
allows for IBAN-only SEPA credit transfers.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from pyiso20022.pain.pain_001_001_09 import pain_001_001_09 as pain
from schwifty import BIC
from xsdata.formats.dataclass.parsers import XmlParser
from xsdata.formats.dataclass.serializers import XmlSerializer
from xsdata.formats.dataclass.serializers.config import SerializerConfig
from xsdata.models.datatype import XmlDate, XmlDateTime

from robocell.errors import RobocellError
from robocell.eval.release.contract import Contract, Party, is_iban_shaped, party_terms
from robocell.eval.release.release import idempotency_key
from robocell.util import atomic_write_bytes

NAMESPACE = pain.__NAMESPACE__
#: ISO 20022 Max35Text: MsgId, PmtInfId and EndToEndId.
MAX_ID_CHARS = 35
#: ISO 20022 Max34Text: a proprietary (non-IBAN) account id.
MAX_ACCOUNT_ID_CHARS = 34
#: ISO 20022 Max140Text: one line of unstructured remittance information.
MAX_REMITTANCE_CHARS = 140
#: The EPC placeholder for an agent known by the IBAN alone.
NOT_PROVIDED = "NOTPROVIDED"
#: A pain.001 of one transfer is a few kB; a larger file at the output path is not ours.
MAX_FILE_BYTES = 1024 * 1024


def pain001_xml(instruction: dict[str, Any], contract: Contract) -> bytes:
    """The pain.001.001.09 credit transfer of ``instruction``, the release of ``contract``."""
    _check_same_parties(instruction, contract)
    message_id = message_identifier(instruction["idempotency_key"])
    amount = Decimal(instruction["amount"])
    released_at = XmlDateTime.from_string(instruction["released_at"])
    header = pain.GroupHeader85(
        msg_id=message_id,
        cre_dt_tm=released_at,
        nb_of_txs="1",
        ctrl_sum=amount,
        initg_pty=pain.PartyIdentification135(nm=contract.buyer.name),
    )
    payment = pain.PaymentInstruction30(
        pmt_inf_id=message_id,
        pmt_mtd=pain.PaymentMethod3Code.TRF,
        nb_of_txs="1",
        ctrl_sum=amount,
        reqd_exctn_dt=pain.DateAndDateTime2Choice(dt=_date_of(released_at)),
        dbtr=pain.PartyIdentification135(nm=contract.buyer.name),
        dbtr_acct=_account(contract.buyer),
        dbtr_agt=_agent(contract.buyer),
        cdt_trf_tx_inf=[_transfer(instruction, contract, message_id, amount)],
    )
    document = pain.Document(
        cstmr_cdt_trf_initn=pain.CustomerCreditTransferInitiationV09(
            grp_hdr=header, pmt_inf=[payment]
        )
    )
    return _serializer().render(document, ns_map={None: NAMESPACE}).encode("utf-8")


def message_identifier(idempotency_key: str) -> str:
    """MsgId, PmtInfId and EndToEndId: the idempotency key cut to ISO 20022's 35 characters."""
    return idempotency_key[:MAX_ID_CHARS]


def parse_pain001(xml: bytes) -> dict[str, Any]:
    """The payment of a file written by :func:`pain001_xml`: amount, currency, both accounts
    and BICs (``None`` when not provided), EndToEndId."""
    document = XmlParser().from_bytes(xml, pain.Document)
    payment = document.cstmr_cdt_trf_initn.pmt_inf[0]
    transfer = payment.cdt_trf_tx_inf[0]
    instructed = transfer.amt.instd_amt
    return {
        "message_id": document.cstmr_cdt_trf_initn.grp_hdr.msg_id,
        "end_to_end_id": transfer.pmt_id.end_to_end_id,
        "amount": str(instructed.value),
        "currency": instructed.ccy,
        "debtor": _party_of(payment.dbtr, payment.dbtr_acct, payment.dbtr_agt),
        "creditor": _party_of(transfer.cdtr, transfer.cdtr_acct, transfer.cdtr_agt),
        "remittance": list(transfer.rmt_inf.ustrd) if transfer.rmt_inf else [],
    }


def _transfer(
    instruction: dict[str, Any], contract: Contract, end_to_end_id: str, amount: Decimal
) -> pain.CreditTransferTransaction34:
    remittance = f"contract {contract.contract_id} milestone {contract.milestone_id}"
    return pain.CreditTransferTransaction34(
        pmt_id=pain.PaymentIdentification6(end_to_end_id=end_to_end_id),
        amt=pain.AmountType4Choice(
            instd_amt=pain.ActiveOrHistoricCurrencyAndAmount(
                value=amount, ccy=instruction["currency"]
            )
        ),
        cdtr_agt=_agent(contract.supplier),
        cdtr=pain.PartyIdentification135(nm=contract.supplier.name),
        cdtr_acct=_account(contract.supplier),
        rmt_inf=pain.RemittanceInformation16(ustrd=[remittance[:MAX_REMITTANCE_CHARS]]),
    )


def _account(party: Party) -> pain.CashAccount38:
    compact = party.account.replace(" ", "")
    if is_iban_shaped(party.account):
        return pain.CashAccount38(id=pain.AccountIdentification4Choice(iban=compact))
    if len(party.account) > MAX_ACCOUNT_ID_CHARS:
        # Cutting an account id would pay someone else: refuse instead.
        raise RobocellError(
            f"account {party.account!r} of {party.name}: over {MAX_ACCOUNT_ID_CHARS} "
            "characters, cannot be written as a pain.001 account id"
        )
    other = pain.GenericAccountIdentification1(id=party.account)
    return pain.CashAccount38(id=pain.AccountIdentification4Choice(othr=other))


def _agent(party: Party) -> pain.BranchAndFinancialInstitutionIdentification6:
    if party.bic:
        institution = pain.FinancialInstitutionIdentification18(bicfi=BIC(party.bic).compact)
    else:  # the IBAN alone routes the payment
        unknown = pain.GenericFinancialIdentification1(id=NOT_PROVIDED)
        institution = pain.FinancialInstitutionIdentification18(othr=unknown)
    return pain.BranchAndFinancialInstitutionIdentification6(fin_instn_id=institution)


def _party_of(
    party: pain.PartyIdentification135 | None,
    account: pain.CashAccount38 | None,
    agent: pain.BranchAndFinancialInstitutionIdentification6 | None,
) -> dict[str, str | None]:
    ident = account.id if account else None
    return {
        "name": party.nm if party else None,
        "iban": ident.iban if ident else None,
        "account_id": ident.othr.id if ident and ident.othr else None,
        "bic": agent.fin_instn_id.bicfi if agent else None,
    }


def _check_same_parties(instruction: dict[str, Any], contract: Contract) -> None:
    recorded = (instruction.get("payer"), instruction.get("payee"))
    if recorded != (party_terms(contract.buyer), party_terms(contract.supplier)):
        raise RobocellError(
            f"instruction {instruction.get('idempotency_key')}: its payer and payee are not "
            f"{contract.contract_id}/{contract.milestone_id}'s buyer and supplier"
        )


def _date_of(moment: XmlDateTime) -> XmlDate:
    return XmlDate(moment.year, moment.month, moment.day)


def _serializer() -> XmlSerializer:
    return XmlSerializer(config=SerializerConfig(indent="  ", xml_declaration=True))


def settlement_path(instruction_path: Path) -> Path:
    """Where ``release -o FILE`` puts the bank file: beside FILE, suffix ``.pain001.xml``."""
    return instruction_path.with_suffix(".pain001.xml")


def check_own_settlement(path: Path, contract_id: str, milestone_id: str) -> None:
    """Refuse, before anything is recorded, a file at ``path`` that is not this milestone's
    own pain.001 (a retry finds its own file and writes it again)."""
    if not (path.exists() or path.is_symlink()):
        return
    refusal = RobocellError(
        f"{path}: exists and is not the pain.001 file of {contract_id}/{milestone_id}; "
        "refusing to overwrite it (nothing was recorded)"
    )
    if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
        raise refusal
    try:
        end_to_end_id = parse_pain001(path.read_bytes())["end_to_end_id"]
    except (OSError, ValueError, AttributeError, IndexError, TypeError):
        raise refusal from None
    if end_to_end_id != message_identifier(idempotency_key(contract_id, milestone_id)):
        raise refusal


def write_settlement(path: Path, xml: bytes) -> None:
    """Write the bank file once: an identical file is left alone, a different one refused."""
    if path.is_file() and not path.is_symlink() and path.read_bytes() == xml:
        return
    if path.exists() or path.is_symlink():
        raise RobocellError(f"{path}: exists with other content; refusing to overwrite it")
    atomic_write_bytes(path, xml)
