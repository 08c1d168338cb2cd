"""`sctpt chain`, the pluggable-transport combiner (docs/chain.md), with real processes.

The tor tests run a real tor bridge and a real tor client (Debian tor) in a private network
namespace (torlib), with `sctpt chain` as the managed transport on both sides and obfs4proxy
and sctpt as its children.  The address test drives the bridge-side combiner directly, with a
Python Extended ORPort server standing in for tor, so that it can check USERADDR for every
single connection.
"""

import os
import re
import signal
import socket
import time

import lib
import torlib
from lib import BIN, LOOP, check, info

SCTPT = os.path.realpath(BIN)


def chain_config(env, name="chain.conf", extra=""):
    """The config file: obfs4proxy and sctpt as hops, both aliases."""
    sctp_args = " -vv" if lib.VERBOSE else " -v"
    text = (f"ClientTransportPlugin obfs4 exec {torlib.OBFS4PROXY}\n"
            f"ServerTransportPlugin obfs4 exec {torlib.OBFS4PROXY}\n"
            f"ClientTransportPlugin sctp exec {SCTPT}{sctp_args}\n"
            f"ServerTransportPlugin sctp exec {SCTPT}{sctp_args}\n"
            "Alias obfs4_sctp obfs4|sctp\n"
            "Alias sctp_obfs4 sctp|obfs4\n" + extra)
    path = os.path.join(env.dir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def chain_transport(conf, alias, udp):
    required = ("obfs4.cert", "obfs4.iat-mode", "sctp.cert")
    return torlib.Transport(alias, [BIN, "chain", "--config", conf], "sctpt_chain_bridgelines.txt",
                            udp=udp, required=required)


def obfs4_procs():
    return [p for p in torlib.netns_pids() if torlib.proc_exe(p) == os.path.realpath(torlib.OBFS4PROXY)]


def _tor_chain(env, alias, udp):
    check(os.access(torlib.OBFS4PROXY, os.X_OK), "obfs4proxy not installed")
    torlib.setup(env)
    conf = chain_config(env)
    transport = chain_transport(conf, alias, udp)
    t0 = time.monotonic()
    with torlib.diagnose(env):
        bridge = torlib.start_bridge(env, transport)
        client = torlib.start_client(env, transport, bridge.bridge_line)
        m = client.wait_notice(torlib.FRESH_DESC, 60)
        check(m.group(1) == bridge.name, f"descriptor for {m.group(1)!r}")
        ext = torlib.check_extorport(bridge, alias)
        info(f"{alias}: fresh descriptor {time.monotonic() - t0:.1f}s after start; bridge "
             f"ExtORPort: {ext[1][:100]} ... {ext[3]}")
        return bridge, client, transport


@lib.timeout(120)
def test_chain_tor_obfs4_sctp(env):
    """obfs4|sctp between a real tor client and a real tor bridge: the client gets a fresh
    bridge descriptor, the bridge's tor sees the connection on its Extended ORPort with
    TRANSPORT obfs4_sctp, and after both tors stop no sctpt or obfs4proxy process is left."""
    bridge, client, transport = _tor_chain(env, "obfs4_sctp", udp=True)
    torlib.stop_all_and_check_pts(env, [client, bridge], transport,
                                  sigs={bridge.name: signal.SIGINT})
    check(not obfs4_procs(), f"obfs4proxy left: {obfs4_procs()}")
