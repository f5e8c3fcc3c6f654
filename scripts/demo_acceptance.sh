#!/usr/bin/env bash
# The acceptance flow end to end on the weld cell (`make demo-acceptance`):
#   buyer      certifier's public key, secret master seed + public commitment, contract
#   supplier   trains a residual PPO policy on top of the scripted welder briefly
#              (configs/weld_ppo.yaml), exports the bundle, delivers it
#   certifier  certifies the delivered bundle on the pre-registered weld benchmark
#   buyer      releases the payment (exactly once) and verifies the ledger
#
# The paid bundle is the trained one: if its certificate is FAILED, its release is REJECTED, no
# payment instruction is written (the script checks that) and the demo fails. A released
# payment is released once: a retry returns the same instruction.
#
# Settings (environment): OUT (demo-out/acceptance), ROBOCELL (.venv/bin/robocell),
# TIMESTEPS (20000), BENCHMARK (weld: configs/benchmarks/weld.yaml), WORKERS (2).
set -euo pipefail
cd "$(dirname "$0")/.."

ROBOCELL=${ROBOCELL:-.venv/bin/robocell}
OUT=${OUT:-demo-out/acceptance}
TIMESTEPS=${TIMESTEPS:-20000}
BENCHMARK=${BENCHMARK:-weld}
WORKERS=${WORKERS:-2}
BUYER=$OUT/buyer
SUPPLIER=$OUT/supplier
CERTIFIER=$OUT/certifier

step() { printf '\n== %s\n' "$*"; }

rm -rf "$OUT"
mkdir -p "$BUYER" "$SUPPLIER" "$CERTIFIER"

step "certifier: Ed25519 key pair (the public key goes to the buyer)"
"$ROBOCELL" keys new -o "$CERTIFIER/keys"

step "buyer: secret master seed; its commitment is published before delivery"
commitment=$("$ROBOCELL" seeds new -o "$BUYER/master.seed" | sed -n 's/^commitment: //p')
echo "commitment: $commitment"

step "buyer: contract for milestone M1 (dispute window 0 h: release at once)"
"$ROBOCELL" contract new \
    --contract-id DEMO-WELD-001 --milestone-id M1-weld-acceptance \
    --buyer "ACME Fabrication GmbH" --buyer-account "DE89 3704 0044 0532 0130 00" \
    --supplier "Cellworks Robotics Ltd" --supplier-account "GB29 NWBK 6016 1331 9268 19" \
    --amount 12500.00 --currency EUR \
    --benchmark "$BENCHMARK" --commitment "$commitment" \
    --certifier-key "$CERTIFIER/keys/certifier.pub" --dispute-window-hours 0 \
    -o "$BUYER/contract.yaml"

step "supplier: train residual PPO on robocell/WeldSeam-v1 for $TIMESTEPS steps, export"
"$ROBOCELL" train configs/weld_ppo.yaml --set total_timesteps="$TIMESTEPS" \
    --set eval_freq=$((TIMESTEPS / 2)) --set checkpoint_freq=$((TIMESTEPS / 2)) \
    --set eval_episodes=5 --run-dir "$SUPPLIER/run" --quiet
"$ROBOCELL" export "$SUPPLIER/run" -o "$SUPPLIER/bundle"

install -m 600 "$BUYER/master.seed" "$CERTIFIER/master.seed"   # handed over in private
LEDGER=$BUYER/ledger.sqlite
PAYMENT=$BUYER/payment.json
"$ROBOCELL" ledger init --ledger "$LEDGER"   # release refuses a ledger nobody created

# certify_and_release NAME BUNDLE: the certifier certifies BUNDLE, the buyer releases it.
# Sets RELEASED_CERT when a payment instruction was written; a rejection (exit 1) must leave
# none. Called as a plain command so that `set -e` stops the demo on any other failure.
RELEASED_CERT=""
certify_and_release() {
    local cert=$CERTIFIER/cert-$1/certificate.json status=0
    step "certifier: certify the delivered bundle $2"
    "$ROBOCELL" certify "$2" --benchmark "$BENCHMARK" \
        --master-seed-file "$CERTIFIER/master.seed" --commitment "$commitment" \
        --key "$CERTIFIER/keys/certifier.key" -o "$(dirname "$cert")" --workers "$WORKERS" \
        --no-progress
    step "buyer: release the payment for $2"
    RELEASE=("$ROBOCELL" release "$cert" --contract "$BUYER/contract.yaml" --bundle "$2"
        --ledger "$LEDGER" -o "$PAYMENT")
    "${RELEASE[@]}" || status=$?
    if [ "$status" = 0 ]; then
        RELEASED_CERT=$cert
    elif [ "$status" = 1 ] && [ ! -e "$PAYMENT" ]; then
        echo "no payment: the certificate was rejected and the ledger records why"
    else
        echo "release ended with exit $status" >&2
        exit 1
    fi
}

certify_and_release trained "$SUPPLIER/bundle"
[ -n "$RELEASED_CERT" ] || { echo "the trained bundle was not paid" >&2; exit 1; }
cat "$PAYMENT"

step "buyer: the same release again returns the first result"
first=$(sha256sum < "$PAYMENT")
"${RELEASE[@]}"
[ "$(sha256sum < "$PAYMENT")" = "$first" ]

step "buyer: the ledger, and a walk along its hash chain"
"$ROBOCELL" ledger show --ledger "$LEDGER"
"$ROBOCELL" ledger verify --ledger "$LEDGER"
echo
echo "acceptance flow done; files under $OUT"
