"""Authentication, end to end: the real program run as plain CGI against a real
SQLite file, with keys made by openssl and tokens signed by tools/mktoken (libjwt)
or, for tokens libjwt would never make, by hand in Python (hmac, openssl dgst).

SPEC §3 [auth], §4 rows 3, 4, 5, 6, 7 and 8 (and their order), §6 envelope.
Every refusal must answer with the error envelope and leave the database as it
was; every run must keep the API key, the token and the HS secret out of the
response and the log, and must be clean under AddressSanitizer/UBSan.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import API_KEY, USER, Sandbox, event  # noqa: E402

PATH = "/api/events-batch"
ISSUER = "https://issuer.example"
AUDIENCE = "events-batch"
CHALLENGE = 'Bearer realm="events-batch"'
CHALLENGE_INVALID = 'Bearer realm="events-batch", error="invalid_token"'
SECOND_API_KEY = "second-api-key-abcdefghij"
EXISTING = (101, 102, 103)  # rows every sandbox holds before the refusals


# ---------------------------------------------------------------- helpers

def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_json(obj):
    return b64u(json.dumps(obj, separators=(",", ":")).encode())


def b64u_decode(seg):
    return base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))


def segment(part):
    """A token segment: a dict is JSON, str is raw JSON text, bytes raw bytes."""
    if isinstance(part, dict) or isinstance(part, list):
        return b64u_json(part)
    if isinstance(part, str):
        part = part.encode()
    return b64u(part)


def hs_token(header, payload, secret, digest="sha256"):
    """A token HMAC-signed in Python (libjwt would refuse to make most of these)."""
    signing_input = segment(header) + "." + segment(payload)
    mac = hmac.new(secret, signing_input.encode(), getattr(hashlib, digest)).digest()
    return signing_input + "." + b64u(mac)


def openssl(*args, data=None):
    p = subprocess.run(["openssl"] + list(args), input=data, capture_output=True, check=True)
    return p.stdout


def rsa_keypair(directory, name, bits=2048):
    priv = os.path.join(directory, name + ".pem")
    pub = os.path.join(directory, name + ".pub")
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:%d" % bits, "-out", priv)
    openssl("pkey", "-in", priv, "-pubout", "-out", pub)
    return priv, pub


def ec_keypair(directory, name, curve):
    priv = os.path.join(directory, name + ".pem")
    pub = os.path.join(directory, name + ".pub")
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:" + curve, "-out", priv)
    openssl("pkey", "-in", priv, "-pubout", "-out", pub)
    return priv, pub


def der_ecdsa_to_raw(der, size):
    """ECDSA-Sig-Value (DER SEQUENCE of two INTEGERs) -> r||s, each size bytes (RFC 7518 §3.4)."""
    def length(buf, i):
        n = buf[i]
        if n < 0x80:
            return n, i + 1
        k = n & 0x7F
        return int.from_bytes(buf[i + 1:i + 1 + k], "big"), i + 1 + k

    assert der[0] == 0x30, der.hex()
    _, i = length(der, 1)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02, der.hex()
        n, i = length(der, i + 1)
        value = int.from_bytes(der[i:i + n], "big")
        out += value.to_bytes(size, "big")
        i += n
    return out


def openssl_token(alg, priv, header, payload):
    """A token signed by the openssl command: RS* as is, ES* converted to raw r||s."""
    bits = alg[2:]
    signing_input = segment(header) + "." + segment(payload)
    sig = openssl("dgst", "-sha" + bits, "-sign", priv, data=signing_input.encode())
    if alg.startswith("ES"):
        sig = der_ecdsa_to_raw(sig, {"256": 32, "384": 48}[bits])
    return signing_input + "." + b64u(sig)


def openssl_der_token(priv, header, payload):
    """An ES256 token whose signature is left in DER form (not the JWS format)."""
    signing_input = segment(header) + "." + segment(payload)
    sig = openssl("dgst", "-sha256", "-sign", priv, data=signing_input.encode())
    return signing_input + "." + b64u(sig)


def now():
    return int(time.time())


def bearer(token):
    return "Bearer " + token


# ---------------------------------------------------------------- base class

class AuthCase(unittest.TestCase):
    """Shared checks; subclasses make cls.sb in setUpClass."""

    sb = None
    next_id = 1000

    @classmethod
    def make_sandbox(cls, **auth):
        """The class's sandbox, removed after the class even if setUpClass fails."""
        cls.sb = Sandbox(auth=auth)
        cls.addClassCleanup(cls.sb.close)
        return cls.sb

    @classmethod
    def new_id(cls):
        AuthCase.next_id += 1
        return AuthCase.next_id

    # --- secrets

    def secrets(self, sb, env):
        """What must never be echoed: the API key, the token, the HS secret."""
        out = [API_KEY, SECOND_API_KEY]
        if len(env.get("HTTP_X_API_KEY") or "") >= 8:
            out.append(env["HTTP_X_API_KEY"])
        auth = env.get("HTTP_AUTHORIZATION") or ""
        cred = auth.split(None, 1)[1].strip() if len(auth.split(None, 1)) == 2 else auth.strip()
        if len(cred) >= 8:
            out.append(cred)
            sig = cred.rsplit(".", 1)[-1]
            if "." in cred and len(sig) >= 16:
                out.append(sig)
        key_file = self.key_file(sb)
        if key_file and os.path.isfile(key_file):
            with open(key_file, "rb") as f:
                text = f.read()
            if b"PRIVATE" not in text and b"PUBLIC" not in text and len(text.strip()) >= 8:
                out.append(text.strip().decode("latin-1"))
        return out

    def key_file(self, sb):
        return getattr(sb, "_jwt_key_file", None) or sb.key_path

    def run_cgi(self, sb, env, body):
        """Run once; assert a clean exit and no secret in the answer or the log."""
        resp, err, rc = sb.cgi(body, env=env)
        self.assertNotIn("AddressSanitizer", err)
        self.assertNotIn("runtime error", err)
        self.assertNotIn("LeakSanitizer", err)
        self.assertEqual(rc, 0, "exit code %d, stderr: %s" % (rc, err))
        body_text = resp.raw.decode("utf-8", "replace")
        for secret in self.secrets(sb, env):
            self.assertNotIn(secret, err, "a secret is in stderr")
            self.assertNotIn(secret, body_text, "a secret is in the response")
        return resp, err

    def env(self, sb, **over):
        return sb.headers(**over)

    # --- outcomes

    def attack_body(self):
        """A batch that would change the database if it got through: an update
        of an existing row and a new row."""
        return [event(EXISTING[0], subject="must not be written", entry_User="mallory"),
                event(self.new_id(), subject="must not be created")]

    def refused(self, sb, env, status, challenge=None, body=None):
        """Refused with the §6 envelope, nothing written. challenge: for 401 on
        the token, the exact WWW-Authenticate value; 'api-key' for a 401 on the
        API key (the token was never judged: the challenge without an error)."""
        before = sb.rows()
        self.assertGreaterEqual(len(before), len(EXISTING))
        resp, err = self.run_cgi(sb, env, self.attack_body() if body is None else body)
        self.assertEqual(resp.status, status, "%r / %s" % (resp, err))
        self.assertEqual(resp.headers.get("content-type"), "application/json; charset=utf-8")
        j = resp.json
        self.assertIsInstance(j, dict, resp)
        self.assertIn("data", j)
        self.assertIsNone(j["data"])
        e = j["error"]
        self.assertIsInstance(e, dict)
        for k in ("type", "title", "status", "detail", "instance"):
            self.assertIn(k, e)
        self.assertEqual(e["status"], status)
        self.assertEqual(e["instance"], PATH)
        self.assertEqual(str(uuid.UUID(j["debug"]["activityID"])), j["debug"]["activityID"])
        if challenge == "api-key":
            # RFC 9110 §15.5.2: a challenge on every 401, naming no token error
            self.assertEqual(resp.headers.get("www-authenticate"), CHALLENGE)
        elif challenge is not None:
            self.assertEqual(resp.headers.get("www-authenticate"), challenge)
        self.assertEqual(sb.rows(), before, "a refused request changed the database")
        return resp, err

    def refused_token(self, sb, authorization, **over):
        """401 on a token that was sent: error="invalid_token"."""
        return self.refused(sb, self.env(sb, HTTP_AUTHORIZATION=authorization, **over), 401,
                            CHALLENGE_INVALID)

    def accepted(self, sb, env, user=USER):
        """207, the rows stored, the token's user recorded as entry/update user."""
        ids = [self.new_id(), self.new_id()]
        resp, err = self.run_cgi(sb, env, [event(i, subject="ok %d" % i) for i in ids])
        self.assertEqual(resp.status, 207, "%r / %s" % (resp, err))
        self.assertEqual(resp.statuses(), [201, 201])
        self.assertIsNone(resp.json["error"])
        rows = sb.rows("SELECT Event_ID, Subject, Entry_User, Update_User FROM Event "
                       "WHERE Event_ID IN (?, ?) ORDER BY Event_ID", ids)
        self.assertEqual(rows, [{"Event_ID": i, "Subject": "ok %d" % i, "Entry_User": user,
                                 "Update_User": user} for i in ids])
        return resp

    def accepted_token(self, sb, token, user=USER, **over):
        return self.accepted(sb, self.env(sb, HTTP_AUTHORIZATION=bearer(token), **over), user)

    @classmethod
    def seed(cls, sb, token):
        """The rows every refusal must leave alone."""
        env = sb.headers(HTTP_AUTHORIZATION=bearer(token))
        resp, err, rc = sb.cgi([event(i, subject="seed %d" % i) for i in EXISTING], env=env)
        assert "Sanitizer" not in err and "runtime error" not in err, err
        assert rc == 0 and resp.status == 207 and resp.statuses() == [201] * len(EXISTING), \
            (resp, err)


# ---------------------------------------------------------------- HS256: the catalogue

class BadTokenCatalogue(AuthCase):
    """HS256 with issuer and audience configured: at least 20 kinds of bad token,
    each 401 with error="invalid_token" (or without it when none was sent)."""

    @classmethod
    def setUpClass(cls):
        sb = cls.make_sandbox(jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
        with open(sb.key_path, "rb") as f:
            cls.secret = f.read().rstrip(b"\n")
        rsa_priv, _ = rsa_keypair(sb.dir, "rsa")
        cls.rsa_priv = rsa_priv
        cls.other_secret = os.path.join(sb.dir, "other.key")
        with open(cls.other_secret, "w") as f:
            f.write(os.urandom(24).hex() + "\n")
        cls.seed(sb, cls.good())

    @classmethod
    def claims(cls, **over):
        """The good claims with some replaced; None marks a claim left out
        (Sandbox.token drops it after merging its own defaults)."""
        c = {"sub": USER, "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 3600}
        c.update(over)
        return c

    @classmethod
    def good(cls, alg="HS256", key=None, **over):
        return cls.sb.token(cls.claims(**over), alg=alg, key=key)

    def py_hs(self, header=None, payload=None, digest="sha256", secret=None):
        if payload is None:
            payload = self.claims()
        if isinstance(payload, dict):
            payload = {k: v for k, v in payload.items() if v is not None}
        return hs_token({"alg": "HS256", "typ": "JWT"} if header is None else header, payload,
                        self.secret if secret is None else secret, digest)

    # -- the references the catalogue is measured against

    def test_good_token_accepted(self):
        self.accepted_token(self.sb, self.good())

    def test_python_signed_hs256_token_accepted(self):
        # the hand-made tokens below differ from this one only in what they test
        self.accepted_token(self.sb, self.py_hs())

    def test_lowercase_bearer_scheme_accepted(self):
        self.accepted(self.sb, self.env(self.sb, HTTP_AUTHORIZATION="bearer " + self.good()))

    def test_uppercase_bearer_scheme_and_tab_accepted(self):
        self.accepted(self.sb, self.env(self.sb, HTTP_AUTHORIZATION="BEARER\t" + self.good()))

    # -- no token at all: the challenge carries no error

    def test_no_authorization_header(self):
        self.refused(self.sb, self.env(self.sb, HTTP_AUTHORIZATION=None), 401, CHALLENGE)

    def test_empty_authorization_header(self):
        self.refused(self.sb, self.env(self.sb, HTTP_AUTHORIZATION=""), 401, CHALLENGE)

    def test_bearer_without_token(self):
        self.refused(self.sb, self.env(self.sb, HTTP_AUTHORIZATION="Bearer"), 401, CHALLENGE)

    def test_bearer_followed_by_spaces_only(self):
        self.refused(self.sb, self.env(self.sb, HTTP_AUTHORIZATION="Bearer   "), 401, CHALLENGE)

    def test_basic_scheme(self):
        self.refused(self.sb, self.env(self.sb, HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz"), 401,
                     CHALLENGE)

    def test_good_token_without_scheme(self):
        self.refused(self.sb, self.env(self.sb, HTTP_AUTHORIZATION=self.good()), 401, CHALLENGE)

    # -- algorithm attacks

    def test_alg_none_empty_signature(self):
        tok = segment({"alg": "none", "typ": "JWT"}) + "." + segment(self.claims()) + "."
        self.refused_token(self.sb, bearer(tok))

    def test_alg_none_with_signature(self):
        # the signature is even a correct HS256 MAC of the signing input
        header, payload = segment({"alg": "none"}), segment(self.claims())
        mac = hmac.new(self.secret, (header + "." + payload).encode(), hashlib.sha256).digest()
        self.refused_token(self.sb, bearer(header + "." + payload + "." + b64u(mac)))

    def test_alg_none_with_garbage_signature(self):
        tok = segment({"alg": "none"}) + "." + segment(self.claims()) + ".c2lnbmF0dXJl"
        self.refused_token(self.sb, bearer(tok))

    def test_alg_mismatch_hs384_with_the_right_secret(self):
        self.refused_token(self.sb, bearer(self.good(alg="HS384")))

    def test_alg_mismatch_hs512_with_the_right_secret(self):
        self.refused_token(self.sb, bearer(self.good(alg="HS512")))

    def test_alg_mismatch_rs256_token(self):
        self.refused_token(self.sb, bearer(self.good(alg="RS256", key=self.rsa_priv)))

    def test_header_says_hs256_but_mac_is_sha512(self):
        self.refused_token(self.sb, bearer(self.py_hs(digest="sha512")))

    def test_header_without_alg(self):
        self.refused_token(self.sb, bearer(self.py_hs(header={"typ": "JWT"})))

    def test_header_alg_is_a_number(self):
        self.refused_token(self.sb, bearer(self.py_hs(header={"alg": 256})))

    def test_header_alg_lowercase(self):
        # RFC 7515 §4.1.1: "alg" is case-sensitive; "hs256" names no algorithm.
        # libjwt 1.10 maps it to HS256 with strcasecmp, so the program's pin
        # (jwt_get_alg() == configured) lets it through: a program bug.
        self.refused_token(self.sb, bearer(self.py_hs(header={"alg": "hs256"})))

    # -- header extensions: RFC 7515 §4.1.11, a crit the recipient does not
    # understand MUST be refused, and none is understood

    def test_crit_header_naming_a_registered_claim(self):
        self.refused_token(self.sb, bearer(self.py_hs(
            header={"alg": "HS256", "typ": "JWT", "crit": ["exp"], "exp": now() + 3600})))

    def test_crit_header_b64_false(self):
        # RFC 7797: an extension that changes what the signature covers
        self.refused_token(self.sb, bearer(self.py_hs(
            header={"alg": "HS256", "b64": False, "crit": ["b64"]})))

    def test_crit_header_empty_list(self):
        self.refused_token(self.sb, bearer(self.py_hs(header={"alg": "HS256", "crit": []})))

    def test_header_member_given_twice(self):
        self.refused_token(self.sb, bearer(self.py_hs(header='{"alg":"HS256","alg":"HS256"}')))

    # -- signature

    def test_tampered_payload(self):
        h, _, s = self.good().split(".")
        self.refused_token(self.sb, bearer(h + "." + segment(self.claims(sub="admin")) + "." + s))

    def test_tampered_signature(self):
        h, p, s = self.good().split(".")
        i = len(s) // 2
        s = s[:i] + ("A" if s[i] != "A" else "B") + s[i + 1:]
        self.refused_token(self.sb, bearer(h + "." + p + "." + s))

    def test_truncated_signature(self):
        self.refused_token(self.sb, bearer(self.good()[:-4]))

    def test_signature_from_another_secret(self):
        self.refused_token(self.sb, bearer(self.good(key=self.other_secret)))

    # -- time claims (default clock_skew_seconds = 60)

    def test_expired_beyond_skew(self):
        self.refused_token(self.sb, bearer(self.good(exp=now() - 600)))

    def test_expired_within_skew_accepted(self):
        self.accepted_token(self.sb, self.good(exp=now() - 20))

    def test_not_yet_valid_beyond_skew(self):
        self.refused_token(self.sb, bearer(self.good(nbf=now() + 600)))

    def test_not_yet_valid_within_skew_accepted(self):
        self.accepted_token(self.sb, self.good(nbf=now() + 20))

    def test_nbf_in_the_past_accepted(self):
        self.accepted_token(self.sb, self.good(nbf=now() - 3600))

    def test_nbf_as_string(self):
        self.refused_token(self.sb, bearer(self.good(nbf=str(now() - 3600))))

    def test_missing_exp(self):
        self.refused_token(self.sb, bearer(self.py_hs(payload=self.claims(exp=None))))

    def test_exp_as_string(self):
        self.refused_token(self.sb, bearer(self.good(exp=str(now() + 3600))))

    def test_exp_as_boolean(self):
        self.refused_token(self.sb, bearer(self.py_hs(payload=self.claims(exp=True))))

    def test_duplicate_exp_last_one_expired(self):
        # RFC 7519 §4: reject, or take the lexically last member - expired either way
        payload = ('{"sub":"%s","iss":"%s","aud":"%s","exp":%d,"exp":%d}'
                   % (USER, ISSUER, AUDIENCE, now() + 3600, now() - 3600))
        self.refused_token(self.sb, bearer(self.py_hs(payload=payload)))

    # -- iat and the lifetime (jwt_max_lifetime_seconds, by default 86400)

    def test_a_day_long_token_issued_now_accepted(self):
        self.accepted_token(self.sb, self.good(iat=now(), exp=now() + 86400))

    def test_exp_further_ahead_than_the_lifetime(self):
        self.refused_token(self.sb, bearer(self.good(exp=now() + 86400 + 600)))

    def test_exp_further_ahead_than_the_lifetime_without_iat(self):
        self.refused_token(self.sb, bearer(self.good(exp=now() + 10 * 365 * 86400)))

    def test_exp_minus_iat_longer_than_the_lifetime(self):
        # exp itself is less than a day ahead: only iat tells how long it lives
        self.refused_token(self.sb, bearer(self.good(iat=now() - 7200, exp=now() + 86400 - 3600)))

    def test_iat_in_the_future_beyond_skew(self):
        self.refused_token(self.sb, bearer(self.good(iat=now() + 600)))

    def test_iat_in_the_future_within_skew_accepted(self):
        self.accepted_token(self.sb, self.good(iat=now() + 20))

    def test_iat_as_string(self):
        self.refused_token(self.sb, bearer(self.good(iat=str(now()))))

    # -- issuer and audience

    def test_wrong_issuer(self):
        self.refused_token(self.sb, bearer(self.good(iss="https://evil.example")))

    def test_missing_issuer(self):
        self.refused_token(self.sb, bearer(self.good(iss=None)))

    def test_issuer_in_an_array(self):
        self.refused_token(self.sb, bearer(self.good(iss=[ISSUER])))

    def test_wrong_audience_string(self):
        self.refused_token(self.sb, bearer(self.good(aud="other-service")))

    def test_wrong_audience_array(self):
        self.refused_token(self.sb, bearer(self.good(aud=["other-service", "events-batch-x"])))

    def test_missing_audience(self):
        self.refused_token(self.sb, bearer(self.good(aud=None)))

    def test_audience_in_array_accepted(self):
        self.accepted_token(self.sb, self.good(aud=["other-service", AUDIENCE]))

    # -- user claim

    def test_missing_user_claim(self):
        tok = self.good(sub=None)
        self.assertNotIn("sub", json.loads(b64u_decode(tok.split(".")[1])))
        self.refused_token(self.sb, bearer(tok))

    def test_user_claim_of_21_characters(self):
        self.refused_token(self.sb, bearer(self.good(sub="u" * 21)))

    def test_user_claim_of_21_multibyte_characters(self):
        self.refused_token(self.sb, bearer(self.good(sub="\u00e9" * 21)))

    def test_user_claim_of_20_multibyte_characters_accepted(self):
        user = "\u00e9" * 19 + "\u20ac"
        self.accepted_token(self.sb, self.good(sub=user), user=user)

    def test_user_claim_of_20_characters_accepted(self):
        self.accepted_token(self.sb, self.good(sub="u" * 20), user="u" * 20)

    def test_user_claim_empty(self):
        self.refused_token(self.sb, bearer(self.good(sub="")))

    def test_user_claim_is_a_number(self):
        self.refused_token(self.sb, bearer(self.good(sub=12345)))

    # -- shape

    def test_two_segments(self):
        h, p, _ = self.good().split(".")
        self.refused_token(self.sb, bearer(h + "." + p))

    def test_four_segments(self):
        self.refused_token(self.sb, bearer(self.good() + ".AAAA"))

    def test_five_segments_jwe_shape(self):
        self.refused_token(self.sb, bearer("eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d"))

    def test_empty_segments(self):
        self.refused_token(self.sb, bearer(".."))

    def test_non_base64url_characters(self):
        h, p, s = self.good().split(".")
        self.refused_token(self.sb, bearer(h + "." + p + "." + s[:10] + "+/" + s[12:]))

    def test_segment_of_impossible_base64_length(self):
        # 4n+1 characters cannot be base64url
        h, p, s = self.good().split(".")
        self.refused_token(self.sb, bearer(h + "." + p + "." + s + "A"))

    def test_base64_padding(self):
        self.refused_token(self.sb, bearer(self.good() + "=="))

    def test_token_of_100_kb(self):
        h, p, s = self.good().split(".")
        big = segment(self.claims(pad="x" * 75000))
        self.assertGreater(len(big), 100000)
        self.refused_token(self.sb, bearer(h + "." + big + "." + s))

    def test_header_not_json(self):
        self.refused_token(self.sb, bearer(self.py_hs(header='{"alg":"HS256",')))

    def test_payload_not_json(self):
        self.refused_token(self.sb, bearer(self.py_hs(payload="not json at all")))

    def test_payload_is_a_json_array(self):
        self.refused_token(self.sb, bearer(self.py_hs(payload=[self.claims()])))

    def test_payload_is_a_json_string(self):
        self.refused_token(self.sb, bearer(self.py_hs(payload='"%s"' % USER)))

    def test_payload_with_garbage_after_a_nul(self):
        # correctly signed; libjwt reads the payload as a C string and
        # would stop at the NUL
        payload = json.dumps(self.claims()).encode() + b"\0garbage"
        self.refused_token(self.sb, bearer(self.py_hs(payload=payload)))

    def test_payload_with_a_nul_at_its_end(self):
        self.refused_token(self.sb, bearer(self.py_hs(
            payload=json.dumps(self.claims()).encode() + b"\0")))

    def test_payload_with_a_second_object(self):
        self.refused_token(self.sb, bearer(self.py_hs(
            payload=json.dumps(self.claims()).encode() + b'{"sub":"admin"}')))

    def test_payload_with_trailing_whitespace_accepted(self):
        self.accepted_token(self.sb, self.py_hs(
            payload=json.dumps(self.claims()).encode() + b" \r\n\t"))

    def test_payload_with_a_claim_given_twice(self):
        payload = ('{"sub":"%s","sub":"admin","iss":"%s","aud":"%s","exp":%d}'
                   % (USER, ISSUER, AUDIENCE, now() + 3600))
        self.refused_token(self.sb, bearer(self.py_hs(payload=payload)))

    def test_payload_not_utf8(self):
        self.refused_token(self.sb, bearer(self.py_hs(
            payload=b'{"sub":"\xff\xfe","exp":%d}' % (now() + 3600))))


# ---------------------------------------------------------------- RS256 and confusion

class RS256(AuthCase):
    @classmethod
    def setUpClass(cls):
        sb = cls.make_sandbox()
        cls.priv, cls.pub = rsa_keypair(sb.dir, "rsa")
        cls.other_priv, _ = rsa_keypair(sb.dir, "rsa-other")
        sb.write_config(auth={"jwt_algorithm": "RS256", "jwt_key_file": cls.pub})
        sb._jwt_key_file = cls.pub
        with open(cls.pub, "rb") as f:
            cls.pub_pem = f.read()
        cls.seed(sb, sb.token(alg="RS256", key=cls.priv))

    def claims(self, **over):
        c = {"sub": USER, "exp": now() + 3600}
        c.update(over)
        return c

    def test_rs256_token_from_libjwt_accepted(self):
        self.accepted_token(self.sb, self.sb.token(alg="RS256", key=self.priv))

    def test_rs256_token_from_openssl_accepted(self):
        tok = openssl_token("RS256", self.priv, {"alg": "RS256", "typ": "JWT"}, self.claims())
        self.accepted_token(self.sb, tok)

    def test_hs256_keyed_with_the_public_key_pem(self):
        # the classic RS/HS confusion: the verifier's own public key as the HMAC secret
        tok = hs_token({"alg": "HS256", "typ": "JWT"}, self.claims(), self.pub_pem)
        self.refused_token(self.sb, bearer(tok))

    def test_hs256_keyed_with_the_public_key_pem_without_newline(self):
        tok = hs_token({"alg": "HS256"}, self.claims(), self.pub_pem.rstrip(b"\n"))
        self.refused_token(self.sb, bearer(tok))

    def test_hs512_keyed_with_the_public_key_pem(self):
        tok = hs_token({"alg": "HS512"}, self.claims(), self.pub_pem, "sha512")
        self.refused_token(self.sb, bearer(tok))

    def test_alg_none(self):
        tok = segment({"alg": "none"}) + "." + segment(self.claims()) + "."
        self.refused_token(self.sb, bearer(tok))

    def test_signed_by_another_rsa_key(self):
        self.refused_token(self.sb, bearer(self.sb.token(alg="RS256", key=self.other_priv)))

    def test_rs384_token_with_the_right_key(self):
        self.refused_token(self.sb, bearer(self.sb.token(alg="RS384", key=self.priv)))

    def test_tampered_payload(self):
        h, _, s = self.sb.token(alg="RS256", key=self.priv).split(".")
        self.refused_token(self.sb, bearer(h + "." + segment(self.claims(sub="admin")) + "." + s))

    def test_tampered_signature(self):
        h, p, s = self.sb.token(alg="RS256", key=self.priv).split(".")
        i = len(s) // 2
        s = s[:i] + ("A" if s[i] != "A" else "B") + s[i + 1:]
        self.refused_token(self.sb, bearer(h + "." + p + "." + s))

    def test_short_signature(self):
        h, p, _ = self.sb.token(alg="RS256", key=self.priv).split(".")
        self.refused_token(self.sb, bearer(h + "." + p + ".AAAA"))

    def test_expired(self):
        tok = self.sb.token({"exp": now() - 3600}, alg="RS256", key=self.priv)
        self.refused_token(self.sb, bearer(tok))


# ---------------------------------------------------------------- every algorithm

class Algorithms(AuthCase):
    """Each configured algorithm verifies its own good token (207, rows stored)."""

    @classmethod
    def setUpClass(cls):
        sb = cls.make_sandbox()
        d = sb.dir
        cls.rsa_priv, cls.rsa_pub = rsa_keypair(d, "rsa")
        cls.p256_priv, cls.p256_pub = ec_keypair(d, "p256", "P-256")
        cls.p256b_priv, _ = ec_keypair(d, "p256b", "P-256")
        cls.p384_priv, cls.p384_pub = ec_keypair(d, "p384", "P-384")
        cls.seed(sb, sb.token())

    def configure(self, alg, key_file, **more):
        auth = {"jwt_algorithm": alg, "jwt_key_file": key_file}
        auth.update(more)
        self.sb.write_config(auth=auth)
        self.sb._jwt_key_file = key_file

    def tearDown(self):
        self.sb.write_config()
        self.sb._jwt_key_file = None

    def claims(self, **over):
        c = {"sub": USER, "exp": now() + 3600}
        c.update(over)
        return c

    def test_hs256(self):
        self.configure("HS256", self.sb.key_path)
        self.accepted_token(self.sb, self.sb.token(alg="HS256"))

    def test_hs384(self):
        self.configure("HS384", self.sb.key_path)
        self.accepted_token(self.sb, self.sb.token(alg="HS384"))
        self.refused_token(self.sb, bearer(self.sb.token(alg="HS256")))

    def test_hs512(self):
        self.configure("HS512", self.sb.key_path)
        self.accepted_token(self.sb, self.sb.token(alg="HS512"))
        self.refused_token(self.sb, bearer(self.sb.token(alg="HS384")))

    def test_rs256(self):
        self.configure("RS256", self.rsa_pub)
        self.accepted_token(self.sb, self.sb.token(alg="RS256", key=self.rsa_priv))

    def test_rs384(self):
        self.configure("RS384", self.rsa_pub)
        self.accepted_token(self.sb, self.sb.token(alg="RS384", key=self.rsa_priv))
        self.refused_token(self.sb, bearer(self.sb.token(alg="RS256", key=self.rsa_priv)))

    def test_rs512(self):
        self.configure("RS512", self.rsa_pub)
        self.accepted_token(self.sb, self.sb.token(alg="RS512", key=self.rsa_priv))
        self.refused_token(self.sb, bearer(self.sb.token(alg="RS384", key=self.rsa_priv)))

    def test_rs512_token_from_openssl_accepted(self):
        self.configure("RS512", self.rsa_pub)
        self.accepted_token(self.sb, openssl_token("RS512", self.rsa_priv, {"alg": "RS512"},
                                                   self.claims()))

    def test_es256_token_from_libjwt(self):
        self.configure("ES256", self.p256_pub)
        tok = self.sb.token(alg="ES256", key=self.p256_priv)
        # libjwt 1.10.2 writes the JWS format: raw r||s, 64 bytes
        self.assertEqual(len(b64u_decode(tok.split(".")[2])), 64)
        self.accepted_token(self.sb, tok)

    def test_es256_standard_token_from_openssl_accepted(self):
        self.configure("ES256", self.p256_pub)
        tok = openssl_token("ES256", self.p256_priv, {"alg": "ES256", "typ": "JWT"}, self.claims())
        self.assertEqual(len(b64u_decode(tok.split(".")[2])), 64)
        self.accepted_token(self.sb, tok)

    def test_es256_der_signature_refused(self):
        self.configure("ES256", self.p256_pub)
        tok = openssl_der_token(self.p256_priv, {"alg": "ES256"}, self.claims())
        self.refused_token(self.sb, bearer(tok))

    def test_es256_signed_by_another_p256_key(self):
        self.configure("ES256", self.p256_pub)
        self.refused_token(self.sb, bearer(self.sb.token(alg="ES256", key=self.p256b_priv)))

    def test_es256_tampered_payload(self):
        self.configure("ES256", self.p256_pub)
        h, _, s = self.sb.token(alg="ES256", key=self.p256_priv).split(".")
        self.refused_token(self.sb, bearer(h + "." + segment(self.claims(sub="admin")) + "." + s))

    def test_es256_short_signature(self):
        self.configure("ES256", self.p256_pub)
        h, p, s = self.sb.token(alg="ES256", key=self.p256_priv).split(".")
        self.refused_token(self.sb, bearer(h + "." + p + "." + b64u(b64u_decode(s)[:63])))

    def test_es256_all_zero_signature(self):
        # r = s = 0 (the "psychic signature", CVE-2022-21449) verifies nothing
        self.configure("ES256", self.p256_pub)
        h, p, _ = self.sb.token(alg="ES256", key=self.p256_priv).split(".")
        self.refused_token(self.sb, bearer(h + "." + p + "." + b64u(b"\0" * 64)))

    def test_es256_hs256_keyed_with_the_public_key_pem(self):
        self.configure("ES256", self.p256_pub)
        with open(self.p256_pub, "rb") as f:
            pem = f.read()
        self.refused_token(self.sb, bearer(hs_token({"alg": "HS256"}, self.claims(), pem)))

    def test_es384_token_from_libjwt(self):
        self.configure("ES384", self.p384_pub)
        tok = self.sb.token(alg="ES384", key=self.p384_priv)
        self.assertEqual(len(b64u_decode(tok.split(".")[2])), 96)
        self.accepted_token(self.sb, tok)

    def test_es384_standard_token_from_openssl_accepted(self):
        self.configure("ES384", self.p384_pub)
        tok = openssl_token("ES384", self.p384_priv, {"alg": "ES384"}, self.claims())
        self.accepted_token(self.sb, tok)

    def test_es384_refuses_es256_token(self):
        self.configure("ES384", self.p384_pub)
        self.refused_token(self.sb, bearer(self.sb.token(alg="ES256", key=self.p256_priv)))

    def test_clock_skew_zero_refuses_a_just_expired_token(self):
        self.configure("HS256", self.sb.key_path, clock_skew_seconds="0")
        self.refused_token(self.sb, bearer(self.sb.token({"exp": now() - 20})))
        self.refused_token(self.sb, bearer(self.sb.token({"nbf": now() + 20})))

    def test_clock_skew_configured_larger(self):
        self.configure("HS256", self.sb.key_path, clock_skew_seconds="900")
        self.accepted_token(self.sb, self.sb.token({"exp": now() - 300}))
        self.accepted_token(self.sb, self.sb.token({"nbf": now() + 300}))
        self.refused_token(self.sb, bearer(self.sb.token({"exp": now() - 3600})))

    def test_max_lifetime_zero_sets_no_limit(self):
        self.configure("HS256", self.sb.key_path, jwt_max_lifetime_seconds="0")
        self.accepted_token(self.sb, self.sb.token({"iat": now(), "exp": now() + 10 * 365 * 86400}))
        # a token issued in the future is still refused
        self.refused_token(self.sb, bearer(self.sb.token({"iat": now() + 600})))

    def test_max_lifetime_configured_shorter(self):
        self.configure("HS256", self.sb.key_path, jwt_max_lifetime_seconds="600")
        self.accepted_token(self.sb, self.sb.token({"exp": now() + 600}))
        self.refused_token(self.sb, bearer(self.sb.token({"exp": now() + 3600})))
        self.refused_token(self.sb, bearer(self.sb.token({"iat": now() - 300, "exp": now() + 400})))

    def test_no_issuer_or_audience_configured_accepts_any(self):
        self.configure("HS256", self.sb.key_path)
        self.accepted_token(self.sb, self.sb.token({"iss": "anyone", "aud": ["x", "y"]}))

    def test_hs_secret_of_exactly_32_bytes(self):
        key = os.path.join(self.sb.dir, "secret32.key")
        with open(key, "w") as f:
            f.write("k" * 30 + "Q7\n")  # 32 bytes once the newline is stripped
        self.configure("HS256", key)
        self.accepted_token(self.sb, self.sb.token(alg="HS256", key=key))
        # the trailing newline is not part of the secret
        tok = hs_token({"alg": "HS256"}, self.claims(), b"k" * 30 + b"Q7")
        self.accepted_token(self.sb, tok)
        tok = hs_token({"alg": "HS256"}, self.claims(), b"k" * 30 + b"Q7\n")
        self.refused_token(self.sb, bearer(tok))


# ---------------------------------------------------------------- order, API keys, databases

class OrderAndDatabaseClaim(AuthCase):
    """SPEC §4: UA 403 > API key 401 > token 401 > database header 400 >
    database claim 403 > content type 415; jwt_database_claim."""

    CLAIM = "vbasoftware-database"

    @classmethod
    def setUpClass(cls):
        sb = cls.make_sandbox()
        cls.other_db = os.path.join(sb.dir, "other.db")
        Sandbox.create_db(cls.other_db)
        cls.databases = {"test": "Driver=SQLite3;Database=%s;NoCreat=1" % sb.db_path,
                         "other": "Driver=SQLite3;Database=%s;NoCreat=1" % cls.other_db}
        keys = [hashlib.sha256(k.encode()).hexdigest() for k in (API_KEY, SECOND_API_KEY)]
        sb.write_config(auth={"jwt_database_claim": cls.CLAIM, "api_key_sha256": keys},
                        databases=cls.databases)
        cls.seed(sb, cls.tok("test"))

    @classmethod
    def tok(cls, grant, **over):
        c = {"sub": USER, "exp": now() + 3600, cls.CLAIM: grant}
        c.update(over)
        return cls.sb.token(c)

    def env_with(self, grant="test", **over):
        h = {"HTTP_AUTHORIZATION": bearer(self.tok(grant))}
        h.update(over)
        return self.env(self.sb, **h)

    def other_rows(self):
        con = sqlite3.connect(self.other_db)
        try:
            return con.execute("SELECT * FROM Event ORDER BY Event_ID").fetchall()
        finally:
            con.close()

    # -- API keys

    def test_first_api_key_accepted(self):
        self.accepted(self.sb, self.env_with(HTTP_X_API_KEY=API_KEY))

    def test_second_api_key_accepted(self):
        self.accepted(self.sb, self.env_with(HTTP_X_API_KEY=SECOND_API_KEY))

    def test_unknown_api_key(self):
        self.refused(self.sb, self.env_with(HTTP_X_API_KEY="not-a-configured-key"), 401, "api-key")

    def test_api_key_differing_in_case(self):
        self.refused(self.sb, self.env_with(HTTP_X_API_KEY=API_KEY.upper()), 401, "api-key")

    def test_api_key_with_a_suffix(self):
        self.refused(self.sb, self.env_with(HTTP_X_API_KEY=API_KEY + "x"), 401, "api-key")

    def test_api_key_given_as_its_hash(self):
        self.refused(self.sb, self.env_with(
            HTTP_X_API_KEY=hashlib.sha256(API_KEY.encode()).hexdigest()), 401, "api-key")

    def test_missing_api_key(self):
        self.refused(self.sb, self.env_with(HTTP_X_API_KEY=None), 401, "api-key")

    def test_empty_api_key(self):
        self.refused(self.sb, self.env_with(HTTP_X_API_KEY=""), 401, "api-key")

    # -- order

    def test_missing_user_agent_first(self):
        env = self.env_with(HTTP_USER_AGENT=None, HTTP_X_API_KEY="wrong-key-wrong",
                            HTTP_AUTHORIZATION="Bearer a.b.c", HTTP_VBASOFTWARE_DATABASE=None,
                            CONTENT_TYPE="text/plain")
        self.refused(self.sb, env, 403)

    def test_empty_user_agent(self):
        self.refused(self.sb, self.env_with(HTTP_USER_AGENT=""), 403)

    def test_api_key_before_token(self):
        env = self.env_with(HTTP_X_API_KEY="wrong-key-wrong", HTTP_AUTHORIZATION="Bearer a.b.c",
                            HTTP_VBASOFTWARE_DATABASE=None, CONTENT_TYPE="text/plain")
        r_key, _ = self.refused(self.sb, env, 401, "api-key")
        env = self.env_with(HTTP_AUTHORIZATION="Bearer a.b.c")
        r_tok, _ = self.refused(self.sb, env, 401, CHALLENGE_INVALID)
        self.assertNotEqual(r_key.json["error"]["type"], r_tok.json["error"]["type"])

    def test_bad_token_before_database_header(self):
        env = self.env_with(HTTP_AUTHORIZATION=bearer(self.tok("test", exp=now() - 3600)),
                            HTTP_VBASOFTWARE_DATABASE=None, CONTENT_TYPE="text/plain")
        self.refused(self.sb, env, 401, CHALLENGE_INVALID)

    def test_missing_token_before_unknown_database(self):
        env = self.env_with(HTTP_AUTHORIZATION=None, HTTP_VBASOFTWARE_DATABASE="nosuch")
        self.refused(self.sb, env, 401, CHALLENGE)

    def test_missing_database_header_before_database_claim(self):
        env = self.env_with(grant="other", HTTP_VBASOFTWARE_DATABASE=None)
        self.refused(self.sb, env, 400)

    def test_unknown_database_before_database_claim(self):
        env = self.env_with(grant="nosuch", HTTP_VBASOFTWARE_DATABASE="nosuch")
        self.refused(self.sb, env, 400)

    def test_database_claim_before_content_type(self):
        env = self.env_with(grant="other", CONTENT_TYPE="text/plain")
        self.refused(self.sb, env, 403)

    def test_content_type_checked_after_auth(self):
        self.refused(self.sb, self.env_with(CONTENT_TYPE="text/plain"), 415)

    # -- the database claim

    def test_claim_string_naming_the_database_accepted(self):
        self.accepted(self.sb, self.env_with("test"))

    def test_claim_array_naming_the_database_accepted(self):
        self.accepted(self.sb, self.env_with(["other", "test"]))

    def test_claim_missing(self):
        env = self.env(self.sb, HTTP_AUTHORIZATION=bearer(self.sb.token()))
        self.refused(self.sb, env, 403)

    def test_claim_naming_another_database(self):
        before = self.other_rows()
        self.refused(self.sb, self.env_with("other"), 403)
        self.assertEqual(self.other_rows(), before)

    def test_claim_naming_another_database_in_an_array(self):
        self.refused(self.sb, self.env_with(["other", "prod"]), 403)

    def test_claim_differing_in_case(self):
        self.refused(self.sb, self.env_with("TEST"), 403)

    def test_claim_is_a_number(self):
        self.refused(self.sb, self.env_with(1), 403)

    def test_claim_array_with_a_non_string(self):
        self.refused(self.sb, self.env_with(["test", 5]), 403)

    def test_claim_empty_array(self):
        self.refused(self.sb, self.env_with([]), 403)

    def test_claim_is_an_object(self):
        self.refused(self.sb, self.env_with({"test": True}), 403)

    def test_claim_is_null(self):
        self.refused(self.sb, self.env_with(None), 403)

    def test_other_database_reachable_with_its_grant(self):
        before = self.sb.rows()
        eid = self.new_id()
        resp, err = self.run_cgi(self.sb, self.env_with("other", HTTP_VBASOFTWARE_DATABASE="other"),
                                 [event(eid)])
        self.assertEqual(resp.status, 207, (resp, err))
        self.assertIn(eid, [r[0] for r in self.other_rows()])
        self.assertEqual(self.sb.rows(), before)


# ---------------------------------------------------------------- who is recorded

class RecordedUser(AuthCase):
    @classmethod
    def setUpClass(cls):
        cls.make_sandbox()
        cls.seed(cls.sb, cls.sb.token())

    def test_token_user_in_entry_and_update_user(self):
        self.accepted_token(self.sb, self.sb.token({"sub": "alice"}), user="alice")

    def test_update_keeps_entry_user_and_records_the_updater(self):
        eid = self.new_id()
        env = self.env(self.sb, HTTP_AUTHORIZATION=bearer(self.sb.token({"sub": "alice"})))
        resp, _ = self.run_cgi(self.sb, env, [event(eid)])
        self.assertEqual(resp.statuses(), [201])
        env = self.env(self.sb, HTTP_AUTHORIZATION=bearer(self.sb.token({"sub": "bob"})))
        resp, _ = self.run_cgi(self.sb, env, [event(eid, subject="second")])
        self.assertEqual(resp.statuses(), [200])
        row = self.sb.rows("SELECT Entry_User, Update_User, Subject FROM Event WHERE Event_ID = ?",
                           (eid,))
        self.assertEqual(row, [{"Entry_User": "alice", "Update_User": "bob", "Subject": "second"}])

    def test_user_claim_configured_as_preferred_username(self):
        sb = Sandbox(auth={"jwt_user_claim": "preferred_username"})
        try:
            self.seed(sb, sb.token({"preferred_username": "seeder"}))
            self.accepted_token(sb, sb.token({"sub": "subject-123", "preferred_username": "carol"}),
                                user="carol")
            self.refused_token(sb, bearer(sb.token({"sub": "subject-123"})))
            self.refused_token(sb, bearer(sb.token({"preferred_username": "c" * 21})))
            self.refused_token(sb, bearer(sb.token({"preferred_username": ["carol"]})))
        finally:
            sb.close()


# ---------------------------------------------------------------- secrets

class SecretsStayOut(AuthCase):
    """The API key, the token and the HS secret appear neither in the response
    nor in stderr, on success or on any refusal (run_cgi checks every run; this
    also looks for fragments)."""

    @classmethod
    def setUpClass(cls):
        cls.make_sandbox(jwt_issuer=ISSUER)
        cls.seed(cls.sb, cls.sb.token({"iss": ISSUER}))
        with open(cls.sb.key_path) as f:
            cls.secret = f.read().strip()

    def check(self, env, body):
        resp, err = self.run_cgi(self.sb, env, body)
        text = resp.raw.decode("utf-8", "replace")
        tok = (env.get("HTTP_AUTHORIZATION") or "").split(" ")[-1]
        for piece in [API_KEY[:12], API_KEY[-12:], self.secret[:16], self.secret[-16:]] + \
                [p for p in tok.split(".") if len(p) >= 16]:
            self.assertNotIn(piece, err)
            self.assertNotIn(piece, text)
        return resp, err

    def test_success(self):
        env = self.env(self.sb, HTTP_AUTHORIZATION=bearer(self.sb.token({"iss": ISSUER})))
        resp, err = self.check(env, [event(self.new_id())])
        self.assertEqual(resp.status, 207)
        self.assertTrue(err.strip(), "no log line on stderr")

    def test_bad_signature(self):
        h, p, s = self.sb.token({"iss": ISSUER}).split(".")
        env = self.env(self.sb, HTTP_AUTHORIZATION=bearer(h + "." + p + "." + s[::-1]))
        resp, _ = self.check(env, [event(self.new_id())])
        self.assertEqual(resp.status, 401)

    def test_wrong_issuer(self):
        env = self.env(self.sb, HTTP_AUTHORIZATION=bearer(self.sb.token({"iss": "https://x"})))
        resp, _ = self.check(env, [event(self.new_id())])
        self.assertEqual(resp.status, 401)

    def test_wrong_api_key(self):
        env = self.env(self.sb, HTTP_X_API_KEY="wrong-but-secret-key-1234")
        resp, _ = self.check(env, [event(self.new_id())])
        self.assertEqual(resp.status, 401)

    def test_malformed_token(self):
        env = self.env(self.sb, HTTP_AUTHORIZATION="Bearer " + "A" * 40 + ".B" * 2 + "!")
        resp, _ = self.check(env, [event(self.new_id())])
        self.assertEqual(resp.status, 401)


# ---------------------------------------------------------------- start-up refusals

class ConfigRefused(AuthCase):
    """A bad [auth] stops start-up: exit non-zero, `FILE:LINE: message` naming
    the key, nothing written, no secret echoed."""

    @classmethod
    def setUpClass(cls):
        sb = cls.make_sandbox()
        d = sb.dir
        cls.rsa_priv, cls.rsa_pub = rsa_keypair(d, "rsa")
        cls.rsa1024_priv, cls.rsa1024_pub = rsa_keypair(d, "rsa1024", 1024)
        cls.p256_priv, cls.p256_pub = ec_keypair(d, "p256", "P-256")
        cls.p384_priv, cls.p384_pub = ec_keypair(d, "p384", "P-384")
        cls.seed(sb, sb.token())

    def tearDown(self):
        self.sb.write_config()

    def line_of(self, key, nth=1):
        with open(self.sb.conf_path) as f:
            hits = [i + 1 for i, line in enumerate(f)
                    if line.split("=")[0].strip() == key or line.strip() == key]
        return hits[nth - 1]

    def refused_at_startup(self, auth, key, nth=1, secret=None, at=None):
        self.sb.write_config(auth=auth)
        before = self.sb.rows()
        env = self.env(self.sb)
        resp, err, rc = self.sb.cgi([event(self.new_id())], env=env)
        self.assertNotIn("Sanitizer", err)
        self.assertNotIn("runtime error", err)
        self.assertNotEqual(rc, 0, "start-up did not fail: %r %s" % (resp, err))
        self.assertNotEqual(resp.status, 207)
        first = err.strip().splitlines()[0] if err.strip() else ""
        m = re.match(r"^(.+?):(\d+): (.*)$", first)
        self.assertTrue(m, "stderr is not FILE:LINE: message: %r" % err)
        self.assertEqual(m.group(1), self.sb.conf_path)
        self.assertEqual(int(m.group(2)), self.line_of(at or key, nth), err)
        self.assertIn(key, m.group(3))
        if secret is not None:
            self.assertNotIn(secret, err)
        self.assertEqual(self.sb.rows(), before)
        return m.group(3)

    def test_reference_config_starts(self):
        self.sb.write_config(auth={"jwt_algorithm": "RS256", "jwt_key_file": self.rsa_pub})
        resp, err, rc = self.sb.cgi([event(self.new_id())], env=self.env(
            self.sb, HTTP_AUTHORIZATION=bearer(self.sb.token(alg="RS256", key=self.rsa_priv))))
        self.assertNotIn("Sanitizer", err)
        self.assertNotIn("runtime error", err)
        self.assertEqual((rc, resp.status), (0, 207), err)

    def test_missing_key_file(self):
        self.refused_at_startup({"jwt_key_file": os.path.join(self.sb.dir, "nope.key")},
                                "jwt_key_file")

    def test_key_file_is_a_directory(self):
        self.refused_at_startup({"jwt_key_file": self.sb.dir}, "jwt_key_file")

    def test_rs256_with_an_hs_secret_file(self):
        with open(self.sb.key_path) as f:
            secret = f.read().strip()
        self.refused_at_startup({"jwt_algorithm": "RS256", "jwt_key_file": self.sb.key_path},
                                "jwt_key_file", secret=secret)

    def test_rs256_with_an_ec_key(self):
        self.refused_at_startup({"jwt_algorithm": "RS256", "jwt_key_file": self.p256_pub},
                                "jwt_key_file")

    def test_rs256_with_an_rsa_1024_key(self):
        self.refused_at_startup({"jwt_algorithm": "RS256", "jwt_key_file": self.rsa1024_pub},
                                "jwt_key_file")

    def test_rs256_with_the_private_key(self):
        self.refused_at_startup({"jwt_algorithm": "RS256", "jwt_key_file": self.rsa_priv},
                                "jwt_key_file")

    def test_es256_with_a_p384_key(self):
        self.refused_at_startup({"jwt_algorithm": "ES256", "jwt_key_file": self.p384_pub},
                                "jwt_key_file")

    def test_es384_with_a_p256_key(self):
        self.refused_at_startup({"jwt_algorithm": "ES384", "jwt_key_file": self.p256_pub},
                                "jwt_key_file")

    def test_es256_with_an_rsa_key(self):
        self.refused_at_startup({"jwt_algorithm": "ES256", "jwt_key_file": self.rsa_pub},
                                "jwt_key_file")

    def test_hs_secret_shorter_than_32_bytes(self):
        key = os.path.join(self.sb.dir, "short.key")
        with open(key, "w") as f:
            f.write("s3cr3t-" + "z" * 24 + "\n")  # 31 bytes and a newline
        self.refused_at_startup({"jwt_key_file": key}, "jwt_key_file", secret="s3cr3t-" + "z" * 24)

    def test_hs_secret_empty_file(self):
        key = os.path.join(self.sb.dir, "empty.key")
        open(key, "w").close()
        self.refused_at_startup({"jwt_key_file": key}, "jwt_key_file")

    def test_api_key_hash_of_63_hex_digits(self):
        good = hashlib.sha256(API_KEY.encode()).hexdigest()
        self.refused_at_startup({"api_key_sha256": [good, good[:63]]}, "api_key_sha256", nth=2)

    def test_api_key_hash_of_65_hex_digits(self):
        good = hashlib.sha256(API_KEY.encode()).hexdigest()
        self.refused_at_startup({"api_key_sha256": good + "0"}, "api_key_sha256")

    def test_api_key_hash_not_hex(self):
        good = hashlib.sha256(API_KEY.encode()).hexdigest()
        self.refused_at_startup({"api_key_sha256": good[:62] + "zz"}, "api_key_sha256")

    def test_api_key_given_in_clear(self):
        self.refused_at_startup({"api_key_sha256": API_KEY}, "api_key_sha256")

    def test_no_api_key_configured(self):
        # a whole-section rule: reported at the [auth] line
        self.refused_at_startup({"api_key_sha256": None}, "api_key_sha256", at="[auth]")

    def test_no_key_file_configured(self):
        self.refused_at_startup({"jwt_key_file": None}, "jwt_key_file", at="[auth]")

    def test_unknown_algorithm(self):
        self.refused_at_startup({"jwt_algorithm": "none"}, "jwt_algorithm")

    def test_es512_not_offered(self):
        self.refused_at_startup({"jwt_algorithm": "ES512"}, "jwt_algorithm")

    def test_clock_skew_not_a_number(self):
        self.refused_at_startup({"clock_skew_seconds": "-5"}, "clock_skew_seconds")


if __name__ == "__main__":
    harness.main()
