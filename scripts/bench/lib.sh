# Shared by the benchmark scripts: source it after defining die().

# require_free_udp HINT PORT…: every PORT is free on 127.0.0.1, or die naming HINT (the
# variables that choose other ports). Checked up front because Kamailio binds with
# SO_REUSEADDR: a second instance on a taken port starts without complaint and the two
# share the traffic.
require_free_udp() {
  local hint=$1 port
  shift
  for port in "$@"; do
    python3 -c 'import socket, sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).bind(("127.0.0.1", int(sys.argv[1])))' \
      "$port" 2>/dev/null ||
      die "UDP port 127.0.0.1:$port is already in use (choose others with $hint)"
  done
}
