"""entitle.Client against the real server."""

import threading
import time

import pytest

import entitle


def test_activate_use_features_refresh_and_deactivate(server, make_client):
    client = make_client("py-seat-1")
    assert not client.is_activated
    with pytest.raises(entitle.NotActivated):
        client.lease()

    lease = client.activate(server.code, seat_name="Python test")
    assert lease["seat"]["id"] == "py-seat-1"
    assert lease["aud"] == server.product
    assert client.is_activated and client.activation_id == lease["sub"]
    assert client.lease_token.count(".") == 2
    assert client.is_enabled("batch_export")
    assert not client.is_enabled("ai_upscale")
    assert client.feature("render_nodes")["limit"] == 2
    assert client.feature("no_such_feature") is None
    assert client.attribute("max_users") == 5
    assert client.attribute("support_tier") == "standard"
    assert client.attribute("missing", "fallback") == "fallback"

    assert client.state()["sub"] == lease["sub"]
    assert client.refresh()["exp"] >= lease["exp"]
    assert client.ensure_lease()["sub"] == lease["sub"]
    assert client.record_usage("cloud_renders", 3)["features"]
    assert client.feature("cloud_renders")["used"] == 3

    # A second client starts from the cache file, offline.
    again = make_client("py-seat-1")
    assert again.is_activated and again.is_enabled("batch_export")

    client.deactivate()
    assert not client.is_activated
    with pytest.raises(entitle.NotActivated):
        client.refresh()


def test_denials_are_typed_exceptions(server, make_client):
    client = make_client("py-seat-2")
    with pytest.raises(entitle.InvalidCredential) as denied:
        client.activate("AAAA-BBBB-CCCC-DDDD")
    assert denied.value.code == "invalid_credential"
    assert isinstance(denied.value, entitle.Denied) and isinstance(denied.value, entitle.EntitleError)

    client.activate(server.code)
    with pytest.raises(entitle.FeatureNotEntitled):
        client.record_usage("batch_export")
    with pytest.raises(entitle.NothingCheckedOut):
        client.give_back("render_nodes")
    with pytest.raises(entitle.ConfigError):
        client.checkout("not a key/")
    client.deactivate()

    with pytest.raises(entitle.ConfigError):
        entitle.Client(server.base, server.tenant, server.product, '{"keys": []}', "s", "/tmp/x.json")
    unreachable = entitle.Client(
        "http://127.0.0.1:9", server.tenant, server.product, server.jwks, "s", "/tmp/entitle-py-x.json",
        timeout_seconds=0.5,
    )
    with pytest.raises(entitle.NetworkError):
        unreachable.activate(server.code)


def test_checkouts_are_context_managers(server, make_client):
    client = make_client("py-seat-3")
    client.activate(server.code)
    with client.checkout("render_nodes", 2) as nodes:
        assert nodes.count == 2 and nodes.feature == "render_nodes"
        assert nodes.lease["seat"]["id"] == "py-seat-3"
        assert client.feature("render_nodes")["checked_out"] == 2
        with pytest.raises(entitle.PoolExhausted):
            client.checkout("render_nodes")
    assert client.feature("render_nodes")["checked_out"] == 0

    # Given back even when the block raises.
    with pytest.raises(RuntimeError):
        with client.checkout("render_nodes"):
            raise RuntimeError("the render failed")
    assert client.feature("render_nodes")["checked_out"] == 0

    held = client.checkout("render_nodes")
    assert held.release()["features"]
    assert held.release() is None
    client.deactivate()


def test_background_refresher_and_threads(server, make_client):
    client = make_client("py-seat-4", refresh_interval_seconds=0.3)
    client.activate(server.code)
    assert client.refresh_status() is None
    client.start_refresher()
    client.start_refresher()
    errors = []

    def work():
        try:
            for _ in range(5):
                client.refresh()
                assert client.is_enabled("batch_export")
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []

    deadline = time.time() + 10
    while time.time() < deadline and client.refresh_status()["refreshes"] < 2:
        time.sleep(0.1)
    status = client.refresh_status()
    assert status["refreshes"] >= 2, status
    assert status["last_error"] is None
    assert status["lease_expires_at"] > time.time()
    client.deactivate()


def test_offline_activation_round_trip(server, make_client):
    client = make_client("py-air-1")
    request = client.write_activation_request(server.code, "Lab PC")
    assert request.startswith("-----BEGIN ENTITLE ACTIVATION REQUEST-----")
    licence = server.post_request_file("/licensing/v1/offline/activate", request)["licence_file"]

    with pytest.raises(entitle.WrongSeat):
        make_client("py-air-2").load_licence_file(licence)
    tampered = licence.replace("-----BEGIN ENTITLE LICENCE FILE-----\n", "-----BEGIN ENTITLE LICENCE FILE-----\nx", 1)
    with pytest.raises(entitle.BadSignature):
        client.load_licence_file(tampered)

    lease = client.load_licence_file(licence)
    assert lease["seat"]["offline"] is True
    assert client.is_enabled("batch_export")
    deactivation = client.write_deactivation_request()
    assert not client.is_activated
    assert server.post_request_file("/licensing/v1/offline/deactivate", deactivation)["deactivated"] is True


def test_device_fingerprint_is_stable(tmp_path):
    first = entitle.device_fingerprint("prd_a", tmp_path / "installation-id")
    assert first == entitle.device_fingerprint("prd_a", tmp_path / "installation-id")
    assert first != entitle.device_fingerprint("prd_b", tmp_path / "installation-id")
    assert len(first) == 64
