"""The web access formats: real ingress-nginx, nginx and Envoy lines in, Sigma webserver
documents or precise reasons out.

The ingress-nginx and nginx lines are filebeat's test logs and the Envoy line is Envoy's
documentation example (tests/fixtures/network/SOURCES.md). The Istio lines below are
written here after Istio's default TEXT format, modelled on the cases SOURCES.md lists for
the Elastic-licensed Istio samples that could not be copied (inbound/outbound, IPv6, UH,
NR, DPE, UF, DC); they are not captured data.
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FIXTURES
from logwarden.normalize.base import MalformedInput
from logwarden.normalize.web_access import (
    ENVOY,
    INGRESS_NGINX,
    NGINX,
    EnvoyLine,
    IngressLine,
    NginxLine,
    parse_time_local_ns,
    upstream_namespace,
)

NETWORK = FIXTURES / "network"
INGRESS_LOG = NETWORK / "ingress_nginx" / "beats-nginx-ingress_controller-test.log"
NGINX_ACCESS = NETWORK / "nginx" / "beats-nginx-access-access.log"
NGINX_EDGE = NETWORK / "nginx" / "beats-nginx-access-test.log"
ENVOY_DOCS = NETWORK / "envoy" / "envoy-docs-default-format-example.log"

#: The field names SigmaHQ's web rules use (rules/web @ 8eaafff, webserver and proxy
#: categories), less `cs-cookie`, which none of these formats logs.
SIGMA_WEB_FIELDS = {
    "cs-method",
    "c-useragent",
    "cs-user-agent",
    "cs-host",
    "c-uri",
    "c-uri-query",
    "c-uri-extension",
    "cs-uri",
    "cs-uri-query",
    "cs-referer",
    "sc-status",
    "dst_ip",
}
#: Sigma's webserver taxonomy names the documents carry besides.
TAXONOMY_FIELDS = {"c-ip", "cs-username", "cs-uri-stem", "cs-version", "sc-bytes", "cs-bytes"}

ISTIO = [
    # inbound, served by the application
    b'[2022-07-13T03:38:52.810Z] "GET /productpage?u=normal HTTP/1.1" 200 - via_upstream - "-"'
    b' 0 5293 32 31 "10.44.1.1" "Mozilla/5.0 (X11; Linux x86_64)"'
    b' "2f6a8a9c-1b0e-9d3b-a3c4-3c9e8a0b1f21" "bookinfo.example.com" "10.44.1.27:9080"'
    b" inbound|9080|| 127.0.0.6:41235 10.44.1.27:9080 10.44.1.1:0"
    b" outbound_.9080_._.productpage.bookinfo.svc.cluster.local default",
    # outbound to another service
    b'[2022-07-13T03:38:52.821Z] "GET /reviews/0 HTTP/1.1" 200 - via_upstream - "-" 0 358 9 8'
    b' "-" "python-requests/2.28.1" "2f6a8a9c-1b0e-9d3b-a3c4-3c9e8a0b1f21" "reviews:9080"'
    b' "10.44.2.5:9080" outbound|9080||reviews.bookinfo.svc.cluster.local'
    b" 10.44.1.27:52810 10.0.45.184:9080 10.44.1.27:40042 - default",
    # IPv6 everywhere
    b'[2022-07-13T03:39:01.002Z] "GET /healthz HTTP/2" 200 - via_upstream - "-" 0 2 1 1 "-"'
    b' "kube-probe/1.24" "5d0c2b8e-0f3e-4c51-9a3c-6a0d1c1f7e11" "[fd00:10:244::7]:8080"'
    b' "[fd00:10:244::5]:8080" outbound|8080||web.default.svc.cluster.local'
    b" [fd00:10:244::7]:51234 [fd00:96::1e]:8080 [fd00:10:244::7]:40000 - default",
    # UH: no healthy upstream
    b'[2022-07-13T03:40:00.000Z] "GET / HTTP/1.1" 503 UH no_healthy_upstream - "-" 0 19 0 -'
    b' "-" "curl/7.79.1" "9b1f0b0e-3c7a-4f0e-8b1c-2d1e0f3a4b5c" "httpbin:8000" "-"'
    b" outbound|8000||httpbin.foo.svc.cluster.local - 10.96.12.3:8000 10.244.0.9:43210 -"
    b" default",
    # NR: no route, a scanner
    b'[2022-07-13T03:41:00.000Z] "GET / HTTP/1.1" 404 NR route_not_found - "-" 0 0 0 - "-"'
    b' "Mozilla/5.0 zgrab/0.x" "0c9d1e2f-3a4b-5c6d-7e8f-9a0b1c2d3e4f" "34.1.2.3" "-" - -'
    b" 10.244.0.5:8080 192.0.2.10:51515 - -",
    # DPE: the request could not be parsed
    b'[2022-07-13T03:42:00.000Z] "- - HTTP/1.1" 400 DPE http1.codec_error - "-" 0 11 0 - "-"'
    b' "-" "-" "-" "-" - - 10.244.0.5:8080 192.0.2.11:40404 - -',
    # UF: upstream connection failure
    b'[2022-07-13T03:43:00.000Z] "GET /ratings/0 HTTP/1.1" 503 UF'
    b" upstream_reset_before_response_started{connection_failure,delayed_connect_error:_111}"
    b' - "delayed_connect_error:_111" 0 91 1 - "-" "Envoy/HC"'
    b' "7a6b5c4d-3e2f-1a0b-9c8d-7e6f5a4b3c2d" "ratings:9080" "10.44.3.9:9080"'
    b" outbound|9080||ratings.bookinfo.svc.cluster.local - 10.0.12.9:9080"
    b" 10.44.1.27:51000 - default",
    # DC: the client went away, response code 0
    b'[2022-07-13T03:44:00.000Z] "POST /api HTTP/1.1" 0 DC downstream_remote_disconnect - "-"'
    b' 120 0 5001 - "-" "python-requests/2.28.1" "1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d"'
    b' "api:8080" "10.44.1.8:8080" inbound|8080|| 127.0.0.6:45000 10.44.1.8:8080'
    b" 10.44.1.2:33000 outbound_.8080_._.api.default.svc.cluster.local default",
]


def lines_of(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().splitlines() if line.strip()]


def ns_of(text: str) -> int:
    """Nanoseconds of an ISO date and time with offset, computed independently."""
    return int(datetime.fromisoformat(text).timestamp()) * 1_000_000_000


INGRESS = lines_of(INGRESS_LOG)
NGINX_LINES = lines_of(NGINX_ACCESS) + lines_of(NGINX_EDGE)


def doc_of(fmt: Any, line: bytes) -> dict[str, Any]:
    document: dict[str, Any] = fmt.document(line, fmt.decode(line))
    return document


def ingress_line(find: bytes, index: int = 0) -> bytes:
    return [line for line in INGRESS if find in line][index]


# --- the format objects -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "source"),
    [(INGRESS_NGINX, "ingress_nginx"), (NGINX, "nginx_access"), (ENVOY, "envoy_access")],
)
def test_format_objects(fmt: Any, source: str) -> None:
    assert fmt.source == source
    for name in ("decode", "time_ns", "alert_ids", "alert_labels", "document", "derived"):
        assert callable(getattr(fmt, name))


# --- ingress-nginx ----------------------------------------------------------------------


def test_every_ingress_nginx_line_decodes() -> None:
    assert len(INGRESS) == 29
    for line in INGRESS:
        view = INGRESS_NGINX.decode(line)
        assert isinstance(view, IngressLine)
        assert INGRESS_NGINX.derived(line, view) == []
        msgspec.json.encode(INGRESS_NGINX.document(line, view))  # plain JSON values


def test_ingress_nginx_document_in_full() -> None:
    line = INGRESS[0]
    view = INGRESS_NGINX.decode(line)
    assert INGRESS_NGINX.time_ns(view) == ns_of("2020-02-07T11:48:51+00:00")
    assert INGRESS_NGINX.alert_ids(view) == ("529a007902362a5f51385a5fa7049884", None)
    assert INGRESS_NGINX.alert_labels(view) == {"namespace": "default"}
    assert INGRESS_NGINX.document(line, view) == {
        "c-ip": "192.168.64.1",
        "cs-username": None,
        "cs-method": "POST",
        "cs-uri": "/products",
        "cs-uri-stem": "/products",
        "c-uri": "/products",
        "cs-uri-query": None,
        "c-uri-query": None,
        "c-uri-extension": None,
        "cs-version": "HTTP/1.1",
        "sc-status": 200,
        "sc-bytes": 59,
        "cs-bytes": 89,
        "cs-referer": None,
        "cs-user-agent": "curl/7.54.0",
        "c-useragent": "curl/7.54.0",
        "cs-host": None,
        "dst_ip": "172.17.0.5",
        "request": "POST /products HTTP/1.1",
        "request_time": 0.001,
        "proxy_upstream_name": "default-web-8080",
        "proxy_alternative_upstream_name": None,
        "upstream_addr": ["172.17.0.5:8080"],
        "upstream_response_length": [59],
        "upstream_response_time": [0.0],
        "upstream_status": [200],
        "request_id": "529a007902362a5f51385a5fa7049884",
    }


@pytest.mark.parametrize("method", [b"PATCHp", b"geti"])
def test_invalid_methods_are_kept_as_logged_without_upstream(method: bytes) -> None:
    line = ingress_line(b'"' + method + b" ")
    view = INGRESS_NGINX.decode(line)
    doc = INGRESS_NGINX.document(line, view)
    assert doc["cs-method"] == method.decode()
    assert doc["sc-status"] == 400
    assert doc["cs-user-agent"] is None
    assert doc["proxy_upstream_name"] is None
    assert doc["proxy_alternative_upstream_name"] is None
    for name in ("upstream_addr", "upstream_response_length", "upstream_response_time"):
        assert doc[name] is None
    assert doc["upstream_status"] is None
    assert doc["dst_ip"] is None
    assert INGRESS_NGINX.alert_labels(view) == {}


def test_several_upstreams_become_lists_and_the_last_is_the_destination() -> None:
    doc = doc_of(INGRESS_NGINX, ingress_line(b"172.17.0.6:8080, 172.17.0.7:8080 61, 100"))
    assert doc["upstream_addr"] == ["172.17.0.6:8080", "172.17.0.7:8080"]
    assert doc["upstream_response_length"] == [61, 100]
    assert doc["upstream_response_time"] == [0.1, 0.004]
    assert doc["upstream_status"] == [200, 203]
    assert doc["dst_ip"] == "172.17.0.7"


def test_dashes_inside_upstream_lists_are_none() -> None:
    doc = doc_of(INGRESS_NGINX, ingress_line(b"0.100, - 200, -"))
    assert doc["upstream_addr"] == ["172.17.0.6:8080", "172.17.0.7:8080"]
    assert doc["upstream_response_length"] == [None]
    assert doc["upstream_response_time"] == [0.1, None]
    assert doc["upstream_status"] == [200, None]


def test_ipv6_client_and_bracketed_upstream() -> None:
    doc = doc_of(INGRESS_NGINX, ingress_line(b"[2a02:cf40::]:9200"))
    assert doc["c-ip"] == "2a02:cf40::"
    assert doc["upstream_addr"] == ["[2a02:cf40::]:9200"]
    assert doc["dst_ip"] == "2a02:cf40::"
    doc = doc_of(INGRESS_NGINX, ingress_line(b"[2a02:cf40::4e36]:5000 0, 0"))
    assert doc["c-ip"] == "2a02:cf40::4e36"
    assert doc["upstream_addr"] == ["[2a02:cf40::7]:5000", "[2a02:cf40::4e36]:5000"]
    assert doc["upstream_status"] == [502, 502]
    assert doc["dst_ip"] == "2a02:cf40::4e36"


def test_the_invalid_ipv6_upstream_is_kept_as_logged_without_a_destination_ip() -> None:
    """nginx never writes this address; the request itself is intact, so the line is kept
    and only `dst_ip`, which must be an IP for `|cidr` rules, is left out."""
    doc = doc_of(INGRESS_NGINX, ingress_line(b"[2a02:cf40::::::::4e36]:500000000"))
    assert doc["upstream_addr"] == ["[2a02:cf40::7]:5000", "[2a02:cf40::::::::4e36]:500000000"]
    assert doc["dst_ip"] is None
    assert doc["cs-method"] == "GET"
    assert doc["sc-status"] == 502


def test_unix_socket_upstream() -> None:
    doc = doc_of(INGRESS_NGINX, ingress_line(b"unix:/var/run/php-fpm.sock"))
    assert doc["upstream_addr"] == ["unix:/var/run/php-fpm.sock"]
    assert doc["dst_ip"] is None


def test_internal_redirects_join_the_upstream_lists() -> None:
    line = INGRESS[0].replace(
        b"172.17.0.5:8080 59 0.000 200",
        b"172.17.0.5:8080 : unix:/tmp/x.sock 59 : 12 0.000 : 0.002 302 : 200",
    )
    doc = doc_of(INGRESS_NGINX, line)
    assert doc["upstream_addr"] == ["172.17.0.5:8080", "unix:/tmp/x.sock"]
    assert doc["upstream_response_length"] == [59, 12]
    assert doc["upstream_response_time"] == [0.0, 0.002]
    assert doc["upstream_status"] == [302, 200]


def test_percent_encoded_uri_is_kept_as_logged() -> None:
    doc = doc_of(INGRESS_NGINX, ingress_line(b"/A%20Beka"))
    assert doc["cs-uri"] == "/A%20Beka%20G1%20Howe/029_AND_30/15%20reading%20elephants.mp4"
    assert doc["c-uri"] == doc["cs-uri"]
    assert doc["c-uri-extension"] == "mp4"


def test_query_is_split_at_the_first_question_mark() -> None:
    doc = doc_of(INGRESS_NGINX, ingress_line(b"?address="))
    assert doc["cs-uri"] == "/products/42?address=delhi+technological+university"
    assert doc["cs-uri-stem"] == doc["c-uri"] == "/products/42"
    assert doc["cs-uri-query"] == doc["c-uri-query"] == "address=delhi+technological+university"
    line = INGRESS[0].replace(b"POST /products HTTP", b"GET /a.php?x=1?y=2.exe HTTP")
    doc = doc_of(INGRESS_NGINX, line)
    assert (doc["c-uri"], doc["c-uri-query"], doc["c-uri-extension"]) == (
        "/a.php",
        "x=1?y=2.exe",
        "php",
    )
    line = INGRESS[0].replace(b"POST /products HTTP", b"GET /dir.d/file? HTTP")
    doc = doc_of(INGRESS_NGINX, line)
    assert (doc["c-uri"], doc["c-uri-query"], doc["c-uri-extension"]) == ("/dir.d/file", "", None)


def test_authenticated_remote_user_is_the_user_label() -> None:
    line = ingress_line(b"remote_monitoring_user")
    view = INGRESS_NGINX.decode(line)
    assert INGRESS_NGINX.document(line, view)["cs-username"] == "remote_monitoring_user"
    assert INGRESS_NGINX.alert_labels(view) == {"user": "remote_monitoring_user"}
    assert INGRESS_NGINX.time_ns(view) == ns_of("2022-08-24T21:04:17+00:00")


@pytest.mark.parametrize(
    ("name", "namespace"),
    [
        ("default-web-8080", "default"),
        ("default-web2-8080", "default"),
        ("esmon-esmon-es-http-9200", None),
        ("kube-system-dns-53", None),
        ("localhost-8080", None),
        ("upstream-default-backend", None),
        ("a--80", None),
        ("", None),
        (None, None),
    ],
)
def test_namespace_only_from_an_unambiguous_upstream_name(
    name: str | None, namespace: str | None
) -> None:
    assert upstream_namespace(name) == namespace


def test_alternative_upstream_name_and_dashed_request_fields() -> None:
    line = INGRESS[0].replace(b"[default-web-8080] []", b"[default-web-8080] [default-canary-8080]")
    line = line.replace(b" 89 0.001 ", b" - - ")
    doc = doc_of(INGRESS_NGINX, line)
    assert doc["proxy_alternative_upstream_name"] == "default-canary-8080"
    assert doc["cs-bytes"] is None
    assert doc["request_time"] is None


# --- nginx combined ---------------------------------------------------------------------


def test_every_nginx_line_decodes() -> None:
    assert len(NGINX_LINES) == 20
    for line in NGINX_LINES:
        view = NGINX.decode(line)
        assert isinstance(view, NginxLine)
        assert NGINX.alert_ids(view) == (None, None)
        msgspec.json.encode(NGINX.document(line, view))


def test_nginx_combined_line_with_its_time_zone() -> None:
    line = NGINX_LINES[1]
    view = NGINX.decode(line)
    assert NGINX.time_ns(view) == ns_of("2016-10-25T14:49:34+02:00")
    doc = NGINX.document(line, view)
    assert doc["c-ip"] == "77.179.66.156"
    assert doc["cs-uri"] == "/favicon.ico"
    assert doc["c-uri-extension"] == "ico"
    assert doc["sc-status"] == 404
    assert doc["sc-bytes"] == 571
    assert doc["cs-referer"] == "http://localhost:8080/"
    assert doc["cs-bytes"] is None
    assert doc["cs-host"] is None
    assert doc["dst_ip"] is None
    assert doc["remote_addr"] is None
    assert doc["extra"] is None
    assert NGINX.alert_labels(view) == {}
    assert NGINX.time_ns(NGINX.decode(NGINX_LINES[3])) == ns_of("2016-12-07T10:34:43+01:00")


def test_vhost_prefix_is_the_host() -> None:
    doc = doc_of(NGINX, next(line for line in NGINX_LINES if line.startswith(b"lessons.")))
    assert doc["cs-host"] == "lessons.example.com"
    assert doc["c-ip"] == "192.168.0.1"
    assert doc["sc-status"] == 206
    assert doc["c-uri-extension"] == "mp4"
    assert doc["remote_addr"] is None


def test_forwarded_list_in_the_address_position() -> None:
    line = next(line for line in NGINX_LINES if line.startswith(b"10.0.0.2, 10.0.0.1, 127."))
    doc = doc_of(NGINX, line)
    assert doc["c-ip"] == "10.0.0.2"
    assert doc["remote_addr"] == ["10.0.0.2", "10.0.0.1", "127.0.0.1"]
    assert doc["cs-host"] is None


def test_quoted_forwarded_list_followed_by_the_address() -> None:
    doc = doc_of(NGINX, next(line for line in NGINX_LINES if line.startswith(b'"')))
    assert doc["c-ip"] == "10.5.102.222"
    assert doc["remote_addr"] == ["10.5.102.222", "199.96.1.1", "204.246.1.1", "10.2.1.185"]
    assert doc["cs-host"] is None
    assert doc["cs-uri-query"] == "q=100"


def test_ipv6_forwarded_list_followed_by_the_address() -> None:
    doc = doc_of(NGINX, next(line for line in NGINX_LINES if line.startswith(b"2a03:")))
    assert doc["c-ip"] == "2a03:0000:10ff:f00f:0000:0000:0:8000"
    assert doc["remote_addr"] == [
        "2a03:0000:10ff:f00f:0000:0000:0:8000",
        "10.225.192.17",
        "10.2.2.121",
    ]
    assert doc["cs-host"] is None


def test_extra_trailing_field_is_kept_unparsed() -> None:
    doc = doc_of(NGINX, next(line for line in NGINX_LINES if b"stringpatch" in line))
    assert doc["extra"] == '"-"'
    assert (
        doc["cs-user-agent"]
        == "Mozilla/5.0 (Windows NT 6.1; rv:15.0) Gecko/20120716 Firefox/15.0a2"
    )


def test_empty_request_with_400() -> None:
    line = next(line for line in NGINX_LINES if b'""' in line)
    view = NGINX.decode(line)
    assert (view.method, view.target, view.version) == (None, None, None)
    doc = NGINX.document(line, view)
    assert doc["request"] == ""
    assert doc["sc-status"] == 400
    assert doc["cs-uri"] is doc["c-uri"] is doc["cs-uri-query"] is None
    assert doc["cs-referer"] is doc["cs-user-agent"] is None
    assert NGINX.time_ns(view) == ns_of("2018-04-12T09:48:40+02:00")


@pytest.mark.parametrize(
    ("request_line", "expected"),
    [
        ("GET /", ("GET", "/", None)),
        ("\\x16\\x03\\x01", (None, None, None)),
        ("GET /a b HTTP/1.1", ("GET", "/a b", "HTTP/1.1")),
        ("GET /a b c", ("GET", "/a b c", None)),
    ],
)
def test_odd_request_lines(request_line: str, expected: tuple[str | None, ...]) -> None:
    line = NGINX_LINES[0].replace(b"GET / HTTP/1.1", request_line.encode())
    view = NGINX.decode(line)
    assert (view.method, view.target, view.version) == expected
    assert view.request == request_line


def test_remote_user_with_a_space() -> None:
    line = NGINX_LINES[0].replace(b" - - [", b" - jane doe [")
    view = NGINX.decode(line)
    assert view.user == "jane doe"
    assert NGINX.alert_labels(view) == {"user": "jane doe"}


# --- Envoy and Istio --------------------------------------------------------------------


def test_envoy_docs_example_in_full() -> None:
    (line,) = lines_of(ENVOY_DOCS)
    view = ENVOY.decode(line)
    assert isinstance(view, EnvoyLine)
    assert ENVOY.time_ns(view) == ns_of("2016-04-15T20:17:00+00:00") + 310_000_000
    assert ENVOY.alert_ids(view) == ("cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2", None)
    assert ENVOY.alert_labels(view) == {}
    assert ENVOY.derived(line, view) == []
    assert ENVOY.document(line, view) == {
        "c-ip": "10.0.35.28",
        "cs-username": None,
        "cs-method": "POST",
        "cs-uri": "/api/v1/locations",
        "cs-uri-stem": "/api/v1/locations",
        "c-uri": "/api/v1/locations",
        "cs-uri-query": None,
        "c-uri-query": None,
        "c-uri-extension": None,
        "cs-version": "HTTP/2",
        "sc-status": 204,
        "sc-bytes": 0,
        "cs-bytes": 154,
        "cs-referer": None,
        "cs-user-agent": "nsq2http",
        "c-useragent": "nsq2http",
        "cs-host": "locations",
        "dst_ip": "10.0.2.1",
        "response_flags": None,
        "duration": 226,
        "upstream_service_time": 100,
        "x_forwarded_for": "10.0.35.28",
        "request_id": "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2",
        "upstream_host": "tcp://10.0.2.1:80",
        "response_code_details": None,
        "connection_termination_details": None,
        "upstream_transport_failure_reason": None,
        "upstream_cluster": None,
        "upstream_local_address": None,
        "downstream_local_address": None,
        "downstream_remote_address": None,
        "requested_server_name": None,
        "route_name": None,
        "extra": None,
    }


def test_istio_lines_decode() -> None:
    for line in ISTIO:
        view = ENVOY.decode(line)
        msgspec.json.encode(ENVOY.document(line, view))
        assert view.route_name is None or view.route_name == "default"


def test_istio_inbound_line() -> None:
    doc = doc_of(ENVOY, ISTIO[0])
    assert doc["response_code_details"] == "via_upstream"
    assert doc["connection_termination_details"] is None
    assert doc["upstream_transport_failure_reason"] is None
    assert doc["upstream_cluster"] == "inbound|9080||"
    assert doc["downstream_remote_address"] == "10.44.1.1:0"
    assert (
        doc["requested_server_name"] == "outbound_.9080_._.productpage.bookinfo.svc.cluster.local"
    )
    assert doc["route_name"] == "default"
    assert doc["c-ip"] == "10.44.1.1"
    assert doc["cs-uri-query"] == "u=normal"
    assert doc["dst_ip"] == "10.44.1.27"
    assert (doc["sc-bytes"], doc["cs-bytes"], doc["duration"]) == (5293, 0, 32)


def test_istio_client_without_forwarded_for_is_the_downstream_peer() -> None:
    doc = doc_of(ENVOY, ISTIO[1])
    assert doc["x_forwarded_for"] is None
    assert doc["c-ip"] == "10.44.1.27"
    assert doc["cs-host"] == "reviews:9080"


def test_istio_ipv6_addresses() -> None:
    doc = doc_of(ENVOY, ISTIO[2])
    assert doc["c-ip"] == "fd00:10:244::7"
    assert doc["dst_ip"] == "fd00:10:244::5"
    assert doc["cs-version"] == "HTTP/2"


@pytest.mark.parametrize(
    ("index", "flags", "details", "status"),
    [
        (3, "UH", "no_healthy_upstream", 503),
        (4, "NR", "route_not_found", 404),
        (5, "DPE", "http1.codec_error", 400),
        (
            6,
            "UF",
            "upstream_reset_before_response_started{connection_failure,delayed_connect_error:_111}",
            503,
        ),
        (7, "DC", "downstream_remote_disconnect", 0),
    ],
)
def test_istio_failures(index: int, flags: str, details: str, status: int) -> None:
    doc = doc_of(ENVOY, ISTIO[index])
    assert doc["response_flags"] == flags
    assert doc["response_code_details"] == details
    assert doc["sc-status"] == status


def test_istio_unparsable_request_has_no_method_or_uri() -> None:
    doc = doc_of(ENVOY, ISTIO[5])
    assert doc["cs-method"] is doc["cs-uri"] is doc["c-uri"] is None
    assert doc["cs-version"] == "HTTP/1.1"
    assert doc["upstream_cluster"] is None
    assert doc["c-ip"] == "192.0.2.11"


def test_istio_upstream_failure_reason() -> None:
    doc = doc_of(ENVOY, ISTIO[6])
    assert doc["upstream_transport_failure_reason"] == "delayed_connect_error:_111"
    assert doc["upstream_local_address"] is None


def test_envoy_tcp_proxy_line() -> None:
    line = b'[2024-05-17T08:00:00.000Z] "- - -" 0 UF,URX 0 0 1 - "-" "-" "-" "-" "10.0.0.5:5432"'
    view = ENVOY.decode(line)
    doc = ENVOY.document(line, view)
    assert doc["response_flags"] == "UF,URX"
    assert doc["cs-method"] is doc["cs-version"] is doc["c-ip"] is None
    assert doc["dst_ip"] == "10.0.0.5"
    assert ENVOY.alert_ids(view) == (None, None)


def test_ambassador_access_prefix_and_trailing_fields() -> None:
    (line,) = lines_of(ENVOY_DOCS)
    doc = doc_of(ENVOY, b"ACCESS " + line + b' "extra field"')
    assert doc["cs-method"] == "POST"
    assert doc["extra"] == '"extra field"'


def test_envoy_user_agent_with_quotes_is_kept() -> None:
    """Envoy does not escape quotes in headers; the fields around them still match."""
    (line,) = lines_of(ENVOY_DOCS)
    doc = doc_of(ENVOY, line.replace(b'"nsq2http"', b'"evil "quoted" agent"'))
    assert doc["cs-user-agent"] == 'evil "quoted" agent'
    assert doc["request_id"] == "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2"


def test_envoy_bad_start_time_is_malformed_at_time_ns() -> None:
    (line,) = lines_of(ENVOY_DOCS)
    view = ENVOY.decode(line.replace(b"2016-04-15T20:17:00.310Z", b"2016-04-15 nonsense"))
    with pytest.raises(MalformedInput, match="start_time"):
        ENVOY.time_ns(view)


# --- Sigma field names ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "line"),
    [(INGRESS_NGINX, INGRESS[0]), (NGINX, NGINX_LINES[0]), (ENVOY, lines_of(ENVOY_DOCS)[0])],
)
def test_documents_carry_every_sigma_web_field(fmt: Any, line: bytes) -> None:
    doc = doc_of(fmt, line)
    assert doc.keys() >= SIGMA_WEB_FIELDS | TAXONOMY_FIELDS


def test_encoded_payloads_stay_encoded_for_sigma() -> None:
    """SigmaHQ's web rules list encoded and plain spellings (`=%3Cscript%3E`, `=<script>`):
    the document keeps what the server logged."""
    line = INGRESS[0].replace(b"POST /products HTTP", b"GET /s?q=%3Cscript%3Ealert(1) HTTP")
    doc = doc_of(INGRESS_NGINX, line)
    assert doc["cs-uri-query"] == "q=%3Cscript%3Ealert(1)"
    assert "=%3Cscript%3E" in doc["cs-uri"]


# --- malformed lines --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "line", "reason"),
    [
        (
            INGRESS_NGINX,
            INGRESS[0].replace(b" 200 59 ", b" 2x0 59 "),
            "status: expected a 3-digit status",
        ),
        (
            INGRESS_NGINX,
            INGRESS[0].replace(b"[default-web-8080]", b"default-web-8080"),
            "proxy_upstream_name",
        ),
        (INGRESS_NGINX, INGRESS[0].replace(b" 0.000 200 ", b" 0.000 ok "), "upstream_status"),
        (INGRESS_NGINX, INGRESS[0].replace(b"59 0.000", b"x 0.000"), "upstream_response_length"),
        (INGRESS_NGINX, INGRESS[0][:60], "not an ingress-nginx upstreaminfo line"),
        (INGRESS_NGINX, NGINX_LINES[0], "request_length"),
        (INGRESS_NGINX, b"", "remote_addr"),
        (NGINX, NGINX_LINES[0].replace(b' 200 612 "', b' 200 many "'), "body_bytes_sent"),
        (NGINX, NGINX_LINES[0].replace(b"[25/Oct", b"25/Oct"), "time_local: expected"),
        (NGINX, NGINX_LINES[0][:-1], "http_user_agent"),
        (ENVOY, lines_of(ENVOY_DOCS)[0].replace(b" 204 ", b" OK "), "response_code"),
        (ENVOY, lines_of(ENVOY_DOCS)[0][1:], "start_time"),
        (ENVOY, INGRESS[0], "start_time"),
    ],
)
def test_malformed_lines_name_the_field(fmt: Any, line: bytes, reason: str) -> None:
    with pytest.raises(MalformedInput, match=reason):
        fmt.decode(line)


def test_malformed_reason_says_where() -> None:
    with pytest.raises(MalformedInput) as info:
        INGRESS_NGINX.decode(INGRESS[0].replace(b" 200 59 ", b" 2x0 59 "))
    assert str(info.value) == (
        "not an ingress-nginx upstreaminfo line: status: expected a 3-digit status "
        'at column 72, found \' 2x0 59 "-" "curl/7.54.0" 89 0.001 [defa\''
    )


@pytest.mark.parametrize(
    ("fmt", "text"),
    [
        (INGRESS_NGINX, "07/Feb/2020:11:48:51 UTC"),
        (NGINX, "31/Feb/2016:14:49:33 +0200"),
        (NGINX, "25/Okt/2016:14:49:33 +0200"),
    ],
)
def test_bad_time_local_is_malformed_at_time_ns(fmt: Any, text: str) -> None:
    line = (INGRESS[0] if fmt is INGRESS_NGINX else NGINX_LINES[0]).split(b"[", 1)
    line[1] = text.encode() + b"]" + line[1].split(b"]", 1)[1]
    view = fmt.decode(b"[".join(line))
    with pytest.raises(MalformedInput, match="time_local"):
        fmt.time_ns(view)


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("17/May/2024:08:00:00 +0000", "2024-05-17T08:00:00+00:00"),
        ("29/Feb/2024:23:59:59 -0730", "2024-02-29T23:59:59-07:30"),
        ("01/Jan/1970:01:00:00 +0100", "1970-01-01T01:00:00+01:00"),
        ("31/Dec/2099:23:59:59 +1400", "2099-12-31T23:59:59+14:00"),
    ],
)
def test_parse_time_local_ns(text: str, iso: str) -> None:
    assert parse_time_local_ns(text) == ns_of(iso)
    assert parse_time_local_ns(text) == ns_of(iso)  # cached


def test_time_local_agrees_with_datetime_across_zones() -> None:
    base = datetime(2021, 3, 28, 0, 30, tzinfo=UTC)
    for minutes in range(0, 24 * 60, 97):
        for offset in (-690, -60, 0, 60, 345):
            zone = timezone(timedelta(minutes=offset))
            when = (base + timedelta(minutes=minutes)).astimezone(zone)
            text = when.strftime("%d/%b/%Y:%H:%M:%S %z")
            assert parse_time_local_ns(text) == int(when.timestamp()) * 1_000_000_000


@pytest.mark.parametrize(
    "text",
    [
        "17/May/2024:08:00:00 +2400",  # an offset of a day or more: no zone has one
        "17/May/2024:08:00:00 -9959",
        "01/Jan/0001:00:30:00 +0100",  # before year 1 in UTC
        "31/Dec/9999:23:59:59 -0001",  # after year 9999 in UTC: no alert could print it
    ],
)
def test_time_local_out_of_range_is_malformed(text: str) -> None:
    with pytest.raises(MalformedInput, match="time_local"):
        parse_time_local_ns(text)


LONG = b"9" * 5000
ENVOY_LINE = lines_of(ENVOY_DOCS)[0]


@pytest.mark.parametrize(
    ("fmt", "line", "reason"),
    [
        (NGINX, NGINX_LINES[0].replace(b" 200 612 ", b" 200 " + LONG + b" "), "body_bytes_sent"),
        (INGRESS_NGINX, INGRESS[0].replace(b" 200 59 ", b" 200 " + LONG + b" "), "body_bytes_sent"),
        (INGRESS_NGINX, INGRESS[0].replace(b'" 89 ', b'" ' + LONG + b" "), "request_length"),
        (ENVOY, ENVOY_LINE.replace(b" 204 ", b" " + LONG + b" "), "response_code"),
        (ENVOY, ENVOY_LINE.replace(b" 154 0 ", b" " + LONG + b" 0 "), "bytes_received"),
        (ENVOY, ENVOY_LINE.replace(b" 0 226 ", b" 0 " + LONG + b" "), "duration"),
    ],
)
def test_a_number_longer_than_any_count_is_malformed(fmt: Any, line: bytes, reason: str) -> None:
    """int() refuses 4,301 digits (ValueError); these logs' counts are 64-bit."""
    assert LONG in line
    with pytest.raises(MalformedInput, match=f"{reason}: expected .*at most 20 digits"):
        fmt.decode(line)


def test_a_64_bit_count_is_read() -> None:
    line = NGINX_LINES[0].replace(b" 200 612 ", b" 200 18446744073709551615 ")
    assert doc_of(NGINX, line)["sc-bytes"] == 2**64 - 1


@pytest.mark.parametrize("fmt", [INGRESS_NGINX, NGINX])
@pytest.mark.parametrize("unit", [b"a - b [", b"1 - ", b'a - b [x] "'])
def test_a_long_line_that_does_not_match_is_refused_at_once(fmt: Any, unit: bytes) -> None:
    """The remote address (nginx) and the remote user are lazy: a line of many " - " and
    " [" that matched nowhere was tried at every pair of them (a 14 kB line took 7 s; this
    140 kB one, over ten minutes). Any container log line with "HTTP/" is tried too."""
    line = unit * (140_000 // len(unit))
    start = time.perf_counter()
    with pytest.raises(MalformedInput):
        fmt.decode(line)
    assert time.perf_counter() - start < 10  # milliseconds now; minutes before


def test_a_remote_user_holding_a_bracket_is_read() -> None:
    """nginx logs $remote_user as sent, escaping only quotes, backslashes and control
    bytes; the time was read from the user's "[" to the time's "]"."""
    line = NGINX_LINES[0].replace(b" - - [", b" - a [b [")
    view = NGINX.decode(line)
    assert view.user == "a [b"
    assert NGINX.time_ns(view) == ns_of("2016-10-25T14:49:33+02:00")


# --- fuzzing ----------------------------------------------------------------------------

FORMATS = [INGRESS_NGINX, NGINX, ENVOY]
SAMPLES = INGRESS + NGINX_LINES + lines_of(ENVOY_DOCS) + ISTIO


def _exercise(fmt: Any, data: bytes) -> None:
    try:
        view = fmt.decode(data)
    except MalformedInput:
        return
    with contextlib.suppress(MalformedInput):
        fmt.time_ns(view)
    fmt.alert_ids(view)
    fmt.alert_labels(view)
    msgspec.json.encode(fmt.document(data, view))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_give_a_view_or_malformed_input(data: bytes) -> None:
    for fmt in FORMATS:
        _exercise(fmt, data)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(SAMPLES),
    st.integers(min_value=0, max_value=400),
    st.integers(min_value=0, max_value=400),
    st.binary(max_size=8),
)
def test_cut_and_spliced_samples_give_a_view_or_malformed_input(
    line: bytes, start: int, end: int, junk: bytes
) -> None:
    mutated = line[:start] + junk + line[max(start, end) :]
    for fmt in FORMATS:
        _exercise(fmt, mutated)
        _exercise(fmt, line[:start])


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(SAMPLES),
    st.integers(min_value=0, max_value=400),
    st.sampled_from([b"-", b",", b" : ", b'"', b"[", b"]", b"?", b".", b"\xff", b"9" * 30]),
)
def test_odd_characters_in_samples(line: bytes, at: int, piece: bytes) -> None:
    for fmt in FORMATS:
        _exercise(fmt, line[:at] + piece + line[at:])
