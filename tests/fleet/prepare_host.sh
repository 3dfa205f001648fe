#!/usr/bin/env bash
# Runs inside one container of the fleet test, as root, through podman exec (tests/fleet/podman_fleet.py):
# makes USER, an ordinary user who logs in with the test's client key only, gives it passwordless sudo
# (SUDO=nopasswd) or no sudoers entry at all (SUDO=none: sudo wants a password, and the user has none),
# and starts sshd on the host key the test generated and copied to /etc/ssh/ssh_host_ed25519_key.
#
#   podman exec -i HOST bash -s -- USER nopasswd|none 'ssh-ed25519 AAAA... comment' < prepare_host.sh
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: prepare_host.sh USER nopasswd|none PUBLIC_KEY" >&2; exit 2; }
user="$1" sudo="$2" key="$3"
case "$sudo" in nopasswd|none) ;; *) echo "SUDO must be nopasswd or none, not '$sudo'" >&2; exit 2 ;; esac
[ -s /etc/ssh/ssh_host_ed25519_key ] || { echo "no host key in /etc/ssh/ssh_host_ed25519_key" >&2; exit 1; }

# Rootful podman containers share the host's uids: system users made here (the daemon's, by the
# role) get 800-899, apart from the host's (999 down), whose tests kill their own system users'
# processes by uid at the same time (kill(-1) as a uid reaches every process of that uid).
grep -q '^SYS_UID_MIN' /etc/login.defs \
    || printf 'SYS_UID_MIN 800\nSYS_UID_MAX 899\nSYS_GID_MIN 800\nSYS_GID_MAX 899\n' >> /etc/login.defs

# a locked password (useradd's default): the key is the only way in
useradd --create-home --shell /bin/bash "$user"
home="$(getent passwd "$user" | cut -d: -f6)"
install -d -m 0700 -o "$user" -g "$user" "$home/.ssh"
printf '%s\n' "$key" > "$home/.ssh/authorized_keys"
chown "$user:$user" "$home/.ssh/authorized_keys"
chmod 0600 "$home/.ssh/authorized_keys"

if [ "$sudo" = nopasswd ]; then
    printf '%s ALL=(ALL:ALL) NOPASSWD: ALL\n' "$user" > /etc/sudoers.d/fleettest
    chmod 0440 /etc/sudoers.d/fleettest
    visudo -cqf /etc/sudoers.d/fleettest
fi

chmod 0600 /etc/ssh/ssh_host_ed25519_key
cat > /etc/ssh/sshd_config.d/fleettest.conf <<CONF
# Written by the fleet test: its own host key, keys only, nobody but $user.
HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers $user
CONF
install -d -m 0755 /run/sshd
/usr/sbin/sshd -t
/usr/sbin/sshd
