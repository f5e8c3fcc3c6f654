#!/usr/bin/env bash
# The acceptance flow end to end on the weld cell (`make demo-acceptance`), three milestones
# of one contract, each paid exactly once and in order:
#   buyer      certifier's public key, secret master seed + public commitment, contracts for
#              M1 (factory acceptance in simulation), M2 (site acceptance on N production
#              parts) and M3 (retention: K more parts with no drift alarm, no rollback)
#   supplier   trains a residual PPO policy on top of the scripted welder briefly
#              (configs/weld_ppo.yaml), exports the bundle, delivers it
#   certifier  certifies the delivered bundle on the pre-registered weld benchmark
#   buyer      releases M1 (exactly once) and deploys the bundle on a line
#   line       runs the cell part after part, signing its telemetry with the cell's key
#   certifier  certifies M2 and M3 on that signed telemetry (`robocell certify-production`)
#   buyer      releases M2 and M3 and verifies the ledger
#
# The paid bundle is the trained one: if its certificate is FAILED, its release is REJECTED, no
# payment instruction is written (the script checks that) and the demo fails. A released
# payment is released once: a retry returns the same instruction.
#
# Settings (environment): OUT (demo-out/acceptance), ROBOCELL (.venv/bin/robocell),
# TIMESTEPS (20000), BENCHMARK (weld: configs/benchmarks/weld.yaml), WORKERS (2),
# START (10 parts between deployment and the site acceptance), SAT_PARTS (100),
# RETAIN_PARTS (50).
set -euo pipefail
cd "$(dirname "$0")/.."

ROBOCELL=${ROBOCELL:-.venv/bin/robocell}
OUT=${OUT:-demo-out/acceptance}
TIMESTEPS=${TIMESTEPS:-20000}
BENCHMARK=${BENCHMARK:-weld}
WORKERS=${WORKERS:-2}
START=${START:-10}
SAT_PARTS=${SAT_PARTS:-100}
RETAIN_PARTS=${RETAIN_PARTS:-50}
BUYER=$OUT/buyer
SUPPLIER=$OUT/supplier
CERTIFIER=$OUT/certifier

step() { printf '\n== %s\n' "$*"; }

rm -rf "$OUT"
LINE=$OUT/line
mkdir -p "$BUYER" "$SUPPLIER" "$CERTIFIER" "$LINE"
PARTIES=(--buyer "ACME Fabrication GmbH" --buyer-account "DE89 3704 0044 0532 0130 00"
    --supplier "Cellworks Robotics Ltd" --supplier-account "GB29 NWBK 6016 1331 9268 19"
    --currency EUR --certifier-key "$CERTIFIER/keys/certifier.pub" --dispute-window-hours 0)

step "certifier: Ed25519 key pair (the public key goes to the buyer)"
"$ROBOCELL" keys new -o "$CERTIFIER/keys"

step "buyer: secret master seed; its commitment is published before delivery"
commitment=$("$ROBOCELL" seeds new -o "$BUYER/master.seed" | sed -n 's/^commitment: //p')
echo "commitment: $commitment"

step "buyer: contract for milestone M1 (dispute window 0 h: release at once)"
"$ROBOCELL" contract new "${PARTIES[@]}" \
    --contract-id DEMO-WELD-001 --milestone-id M1-weld-acceptance --amount 12500.00 \
    --benchmark "$BENCHMARK" --commitment "$commitment" -o "$BUYER/contract.yaml"

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

# ---------------------------------------------------------------- production
step "buyer: the cell's telemetry key, and the line the bundle is deployed on"
"$ROBOCELL" keys new --cell weld-1 -o "$LINE/keys"
PARTS=$((START + SAT_PARTS + RETAIN_PARTS))
cat > "$LINE/line.yaml" <<EOF
# The delivered bundle in production: $PARTS seams.
line: demo-line
parts: $PARTS
cells:
  - id: weld-1
    env_id: robocell/WeldSeam-v1
    bundle: $(realpath "$SUPPLIER/bundle")
    key: $(realpath "$LINE/keys/cell-weld-1.key")
EOF
PRODUCTION=(--line demo-line --cell weld-1 --cell-key "$LINE/keys/cell-weld-1.pub"
    --bundle "$SUPPLIER/bundle")

step "buyer: milestones M2 (site acceptance on $SAT_PARTS parts) and M3 (retention, $RETAIN_PARTS)"
"$ROBOCELL" contract new "${PARTIES[@]}" "${PRODUCTION[@]}" --kind production \
    --contract-id DEMO-WELD-001 --milestone-id M2-site-acceptance --amount 5000.00 \
    --follows M1-weld-acceptance --benchmark "$BENCHMARK" \
    --start-after-deployment "$START" --parts "$SAT_PARTS" -o "$BUYER/contract-sat.yaml"
"$ROBOCELL" contract new "${PARTIES[@]}" "${PRODUCTION[@]}" --kind retention \
    --contract-id DEMO-WELD-001 --milestone-id M3-retention --amount 2500.00 \
    --follows M2-site-acceptance --start-after-deployment $((START + SAT_PARTS)) \
    --parts "$RETAIN_PARTS" -o "$BUYER/contract-retention.yaml"

step "line: the bundle welds $PARTS seams; the cell signs every telemetry batch"
TELEMETRY=$LINE/telemetry.sqlite
"$ROBOCELL" line run "$LINE/line.yaml" -o "$LINE/out" --telemetry "$TELEMETRY" --no-progress
"$ROBOCELL" telemetry verify "$TELEMETRY"

# certify_production NAME CONTRACT [--benchmark SPEC]: the certifier certifies the contract's
# window of the telemetry; the buyer releases it, and once more (the same instruction).
certify_production() {
    local name=$1 contract=$2 paid
    shift 2
    step "certifier: certify $name on the signed telemetry"
    "$ROBOCELL" certify-production "$SUPPLIER/bundle" --telemetry "$TELEMETRY" \
        --contract "$contract" --key "$CERTIFIER/keys/certifier.key" \
        -o "$CERTIFIER/cert-$name" "$@"
    "$ROBOCELL" verify "$CERTIFIER/cert-$name" --pubkey "$CERTIFIER/keys/certifier.pub" \
        --telemetry "$TELEMETRY" --bundle "$SUPPLIER/bundle"
    step "buyer: release $name"
    local release=("$ROBOCELL" release "$CERTIFIER/cert-$name/certificate.json"
        --contract "$contract" --bundle "$SUPPLIER/bundle" --telemetry "$TELEMETRY"
        --ledger "$LEDGER" -o "$BUYER/payment-$name.json")
    "${release[@]}"
    paid=$(sha256sum < "$BUYER/payment-$name.json")
    "${release[@]}"
    [ "$(sha256sum < "$BUYER/payment-$name.json")" = "$paid" ]
}
certify_production site-acceptance "$BUYER/contract-sat.yaml" --benchmark "$BENCHMARK"
certify_production retention "$BUYER/contract-retention.yaml"

step "buyer: the ledger, and a walk along its hash chain"
"$ROBOCELL" ledger show --ledger "$LEDGER"
"$ROBOCELL" ledger verify --ledger "$LEDGER"
released=$("$ROBOCELL" ledger show --ledger "$LEDGER" | grep -c RELEASED)
[ "$released" = 3 ] || { echo "expected 3 releases, found $released" >&2; exit 1; }
echo
echo "acceptance flow done: M1, M2 and M3 paid once each; files under $OUT"
