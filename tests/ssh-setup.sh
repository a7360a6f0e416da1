#!/usr/bin/env bash
# Start an sshd on 127.0.0.1 for the end-to-end tests (xsave | ssh
# localhost xrestore), with a host key and a client key made for this run,
# and print the ssh command the tests use, for XSTREAM_SSH:
#
#   export XSTREAM_SSH="$(tests/ssh-setup.sh)"
#
# Needs root and openssh-server; traffic stays on loopback.
set -euo pipefail
port=${XSTREAM_SSH_PORT:-2222}
dir=${XSTREAM_SSH_DIR:-/tmp/xstream-ssh}
mkdir -p "$dir" /run/sshd
chmod 700 "$dir"
[ -f "$dir/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/host_ed25519"
[ -f "$dir/client_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/client_ed25519"
cp "$dir/client_ed25519.pub" "$dir/authorized_keys"
chmod 600 "$dir/authorized_keys"
cat > "$dir/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $port
HostKey $dir/host_ed25519
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile $dir/sshd.pid
AcceptEnv XSTREAM_STORE
CONF
if [ -f "$dir/sshd.pid" ] && kill -0 "$(cat "$dir/sshd.pid")" 2>/dev/null; then
	:
else
	/usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
fi
cmd="ssh -p $port -i $dir/client_ed25519 -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR $(id -un)@127.0.0.1"
# Wait until it answers.
for _ in $(seq 1 50); do
	if $cmd true 2>/dev/null; then
		echo "$cmd"
		exit 0
	fi
	sleep 0.1
done
echo "ssh-setup: sshd on 127.0.0.1:$port does not answer; see $dir/sshd.log" >&2
exit 1
