"""Clean start-up failures (one line, exit 2) and the config lookup (--config, $FIXGW_CONFIG,
./configs/gateway.toml, and where it looked)."""
from __future__ import annotations

import io
import socket

import pytest

from gateway.common.configfile import ConfigError, find_config
from gateway.common.failures import (StartupError, check_certificate, check_port_free, check_store_dir,
                                     run_cleanly)


def test_port_in_use_is_one_line():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(StartupError) as e:
            check_port_free("127.0.0.1", port, "OMS acceptor port")
    assert str(e.value) == (f"OMS acceptor port 127.0.0.1:{port} is already in use "
                            "(another gateway running? change the port or stop it)")
    check_port_free("127.0.0.1", port)       # free again
    check_port_free("127.0.0.1", 0)


def test_store_dir_missing_or_unwritable(tmp_path):
    with pytest.raises(StartupError, match="does not exist"):
        check_store_dir(tmp_path / "nope", create=False)
    assert check_store_dir(tmp_path / "made" / "here").is_dir()
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(StartupError, match="is not a directory"):
        check_store_dir(f)
    with pytest.raises(StartupError, match="cannot be created"):
        check_store_dir(f / "sub")


def test_bad_certificate(tmp_path):
    bad = tmp_path / "cert.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    with pytest.raises(StartupError, match=r"^venue ALPHA TLS: bad certificate .*cert.pem"):
        check_certificate(str(bad), what="venue ALPHA TLS")
    with pytest.raises(StartupError, match="certificate .* not found"):
        check_certificate(str(tmp_path / "missing.pem"))


def test_run_cleanly_prints_one_line_and_exits_2():
    err = io.StringIO()

    def boom():
        raise StartupError("OMS acceptor port 127.0.0.1:9100 is already in use")
    assert run_cleanly(boom, "fixgw run", err) == 2
    assert err.getvalue() == "fixgw run: OMS acceptor port 127.0.0.1:9100 is already in use\n"

    def in_use():
        raise OSError(98, "Address already in use")
    err = io.StringIO()
    assert run_cleanly(in_use, "fixgw run", err) == 2 and err.getvalue().count("\n") == 1

    def locked():
        from gateway.fix.store import StoreLocked
        raise StoreLocked("var/store/FIX.4.4_GW-_A.lock held by pid 42")
    err = io.StringIO()
    assert run_cleanly(locked, "fixgw run", err) == 2 and "pid 42" in err.getvalue()
    with pytest.raises(ZeroDivisionError):        # a bug keeps its traceback
        run_cleanly(lambda: 1 / 0)
    assert run_cleanly(lambda: 0) == 0


def test_find_config_order_and_where_it_looked(tmp_path):
    (tmp_path / "configs").mkdir()
    default = tmp_path / "configs" / "gateway.toml"
    other = tmp_path / "other.toml"
    other.write_text("")
    with pytest.raises(ConfigError) as e:
        find_config(None, environ={}, cwd=tmp_path)
    msg = str(e.value)
    assert "--config (not given)" in msg and "$FIXGW_CONFIG (not set)" in msg and str(default) in msg
    default.write_text("")
    assert find_config(None, environ={}, cwd=tmp_path) == default
    assert find_config(None, environ={"FIXGW_CONFIG": str(other)}, cwd=tmp_path) == other
    assert find_config("other.toml", environ={"FIXGW_CONFIG": "x"}, cwd=tmp_path) == other
    with pytest.raises(ConfigError, match=r"from \$FIXGW_CONFIG"):
        find_config(None, environ={"FIXGW_CONFIG": "missing.toml"}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="given with --config"):
        find_config("missing.toml", environ={}, cwd=tmp_path)


def test_gateway_start_with_port_in_use_is_one_line_exit_2(tmp_path):
    import subprocess

    from gateway.common import procs
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = tmp_path / "gateway.toml"
        cfg.write_text(f'store_dir = "{tmp_path / "store"}"\n[oms]\nport = {port}\nclients = [{{ comp_id = "OMS1" }}]\n'
                       '[[venues]]\nname = "ALPHA"\nport = 9\n[admin]\nport = 0\n')
        run = subprocess.run(procs.fixgw_command("run", "--config", str(cfg)), capture_output=True, text=True,
                             timeout=60)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert lines == [f"fixgw run: OMS acceptor port 127.0.0.1:{port} is already in use "
                     "(another gateway running? change the port or stop it)"], run.stderr
