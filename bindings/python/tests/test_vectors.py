"""The protocol test vectors (protocol/vectors) through the Python binding's verification."""

import json

import pytest

import entitle
from conftest import REPO

VECTORS = REPO / "protocol" / "vectors"
ERRORS = {
    "bad_signature": entitle.BadSignature,
    "expired": entitle.Expired,
    "clock_set_back": entitle.ClockSetBack,
    "wrong_product": entitle.WrongProduct,
    "wrong_seat": entitle.WrongSeat,
    "malformed": entitle.Malformed,
}


def load(name):
    return json.loads((VECTORS / name).read_text())


JWKS = json.dumps(load("keys.json")["jwks"])
LEASES = load("lease_tokens.json")
LICENCES = load("licence_files.json")


@pytest.mark.parametrize("vector", LEASES["vectors"], ids=lambda v: v["name"])
def test_lease_token_vector(vector):
    skew = LEASES["clock_skew_seconds"]
    if vector["last_seen"] is not None and vector["now"] + skew < vector["last_seen"]:
        assert vector["verdict"] == "clock_set_back"
        return
    args = (JWKS, vector["token"], vector["product"], vector["seat_id"], vector["now"])
    if vector["verdict"] == "valid":
        assert entitle.verify_lease_token(*args) == vector["claims"]
    else:
        with pytest.raises(ERRORS[vector["verdict"]]):
            entitle.verify_lease_token(*args)


@pytest.mark.parametrize("vector", LICENCES["vectors"], ids=lambda v: v["name"])
def test_licence_file_vector(vector):
    args = (JWKS, vector["text"], vector["product"], vector["seat_id"], vector["now"])
    if vector["verdict"] in ("valid", "replay"):
        claims = entitle.verify_licence_file(*args)
        answers_request = claims["nonce"] == vector["pending_request_nonce"]
        assert answers_request == (vector["verdict"] == "valid")
    else:
        with pytest.raises(ERRORS[vector["verdict"]]):
            entitle.verify_licence_file(*args)
