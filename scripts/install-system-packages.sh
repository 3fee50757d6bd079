#!/usr/bin/env bash
# Install the Debian packages medarchive needs, only when something is missing.
# --tests: also what the test suite needs (Debian's chromium for the browser tests).
set -euo pipefail

missing=()
command -v tesseract >/dev/null || missing+=(tesseract-ocr)
command -v tesseract >/dev/null && tesseract --list-langs 2>/dev/null | grep -qx eng || missing+=(tesseract-ocr-eng)
command -v pdftoppm >/dev/null && command -v pdftotext >/dev/null || missing+=(poppler-utils)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
# The web interface's end-to-end tests drive Debian's chromium through Playwright.
if [ "${1:-}" = "--tests" ]; then
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  # The EHR tests run a real FHIR server (Medplum, tests/fhir_server) on Node.
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
  # The PostgreSQL tests start a throwaway cluster (tests/postgres.py).
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
  command -v psql >/dev/null || missing+=(postgresql-client)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing system packages: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root (or sudo) to apt-get install ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
