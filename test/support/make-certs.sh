#!/bin/sh
# Generates throwaway TLS material for tests and for checking examples/full.kdl:
#   ca.pem/ca.key            a test CA
#   site.pem/site.key        ECDSA P-256 leaf for localhost, *.example.test, 127.0.0.1 (+ chain)
#   site-rsa.pem/site-rsa.key RSA 2048 leaf for the same names
#   other.pem/other.key      ECDSA leaf for other.test
#   client.pem/client.key    client certificate (CN=test-client) signed by the CA
#   expired.pem/expired.key  a leaf that expired yesterday
#   site.ocsp                a DER OCSP response ("good") for site.pem, signed by the CA
# Never used for anything but tests: keys are created fresh in DIR on every run.
set -eu
dir=${1:?usage: make-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
[ -f .complete ] && exit 0
export OPENSSL_CONF=/dev/null

openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj "/CN=Sentinel Test CA" -keyout ca.key -out ca.pem \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

leaf() {  # name keyopts subject subject-alt-names [days]
  name=$1; keyopts=$2; subj=$3; leaf_san=$4; days=${5:-30}
  # shellcheck disable=SC2086
  openssl req -new -newkey $keyopts -nodes -subj "$subj" -keyout "$name.key" -out "$name.csr" 2>/dev/null
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' "$leaf_san" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days "$days" \
    -extfile "$name.ext" -out "$name.leaf" 2>/dev/null
  cat "$name.leaf" ca.pem > "$name.pem"
  rm -f "$name.csr" "$name.ext"
}
san="DNS:localhost,DNS:*.example.test,DNS:example.test,IP:127.0.0.1,IP:::1"
leaf site "ec -pkeyopt ec_paramgen_curve:P-256" "/CN=localhost" "$san"
leaf site-rsa "rsa:2048" "/CN=localhost" "$san"
leaf other "ec -pkeyopt ec_paramgen_curve:P-256" "/CN=other.test" "DNS:other.test"
leaf client "ec -pkeyopt ec_paramgen_curve:P-256" "/CN=test-client/O=Sentinel Tests" "DNS:test-client"

# An expired leaf: valid from two days ago to yesterday.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
  -keyout expired.key -out expired.csr 2>/dev/null
printf 'subjectAltName=%s\n' "$san" > expired.ext
openssl x509 -req -in expired.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
  -not_before "$(date -u -d '2 days ago' +%Y%m%d%H%M%SZ)" -not_after "$(date -u -d '1 day ago' +%Y%m%d%H%M%SZ)" \
  -extfile expired.ext -out expired.pem 2>/dev/null || \
openssl x509 -req -in expired.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 0 -extfile expired.ext -out expired.pem 2>/dev/null
rm -f expired.csr expired.ext

# OCSP response for site.pem, "good", signed by the CA itself.
serial=$(openssl x509 -in site.leaf -noout -serial | cut -d= -f2)
expiry=$(date -u -d '+30 days' +%y%m%d%H%M%SZ)
printf 'V\t%s\t\t%s\tunknown\t/CN=localhost\n' "$expiry" "$serial" > ocsp-index.txt
openssl ocsp -index ocsp-index.txt -rsigner ca.pem -rkey ca.key -CA ca.pem -issuer ca.pem \
  -cert site.leaf -ndays 7 -respout site.ocsp -noverify >/dev/null 2>&1 || \
openssl ocsp -index ocsp-index.txt -rsigner ca.pem -rkey ca.key -CA ca.pem \
  -reqout ocsp.req -issuer ca.pem -cert site.leaf >/dev/null 2>&1
[ -s site.ocsp ] || { echo "make-certs: could not create site.ocsp" >&2; exit 1; }
touch .complete
