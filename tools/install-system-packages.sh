#!/usr/bin/env bash
# Install the Debian packages the bundle needs, once: the data set and the LaTeX/pandoc
# route nbconvert takes to PDF. As root it installs what is missing; otherwise it stops
# with the exact sudo line. Installs nothing when everything is present.
set -euo pipefail

packages=(dataset-fashion-mnist texlive-xetex texlive-fonts-recommended
          texlive-plain-generic pandoc poppler-utils)

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "note: not a Debian/Ubuntu system; skipping system packages." >&2
  echo "      Install XeLaTeX and pandoc yourself for PDFs, and set FASHION_MNIST_DIR" >&2
  echo "      to the Fashion-MNIST files (or let Keras download them)." >&2
  exit 0
fi

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "error: missing system packages: ${missing[*]}" >&2
  echo "Install them with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "Installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
