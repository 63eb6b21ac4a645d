/**
 * The nftables rules of one instance, as one `nft -f` script that atomically replaces this
 * instance's tables (and only them): `table inet <instance>` (host protection, egress filter, NAT)
 * and `table bridge <instance>` (anti-spoofing and no sandbox-to-sandbox frames).
 */
import { type Cidr, formatCidr, intToIp } from './ipv4.js';

/** Destinations sandboxes never reach (besides the host itself, which the input chain covers). */
export const BLOCKED_V4 = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16', // link-local, including cloud metadata at 169.254.169.254
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '224.0.0.0/3', // multicast and reserved
];

/** Not reachable either; sandboxes get no IPv6 at all, so every IPv6 packet from them is dropped. */
export const BLOCKED_V6 = ['fc00::/7', 'fe80::/10'];

/**
 * Open outbound connections one sandbox may hold: enough for any package manager, and it keeps one
 * sandbox from filling the host's conntrack table (shared by every sandbox's NAT).
 */
export const MAX_CONNECTIONS_PER_SANDBOX = 4096;

export interface RulesInput {
  table: string;
  bridge: string;
  /** Host-side veth names are `<vethPrefix><hex slot>`. */
  vethPrefix: string;
  subnet: Cidr;
  /** Every sandbox slot of the subnet: its host veth name, MAC and address. */
  slots: { veth: string; mac: string; ip: string }[];
  /** DNS servers sandboxes may reach on port 53 even inside blocked ranges. */
  resolvers: string[];
  /** The host's directly connected networks (its LAN), blocked like private ranges. */
  lan: string[];
}

/** Deletes only this instance's tables; a no-op when they do not exist. */
export function deleteTablesScript(table: string): string {
  return [`table inet ${table}`, `delete table inet ${table}`, `table bridge ${table}`, `delete table bridge ${table}`, ''].join(
    '\n',
  );
}

/** `elements = { ... }` or nothing, since nft rejects an empty element list. */
function elements(list: string[]): string {
  return list.length ? ` elements = { ${list.join(', ')} }` : '';
}

export function rulesScript(r: RulesInput): string {
  const br = JSON.stringify(r.bridge);
  const ports = JSON.stringify(r.vethPrefix + '*');
  const subnet = formatCidr(r.subnet);
  const blocked = [...new Set([...BLOCKED_V4, ...r.lan])];
  const portMac = r.slots.map((s) => `${JSON.stringify(s.veth)} . ${s.mac}`);
  const portIp = r.slots.map((s) => `${JSON.stringify(s.veth)} . ${s.ip}`);
  return `
table inet ${r.table}
delete table inet ${r.table}
table bridge ${r.table}
delete table bridge ${r.table}

table inet ${r.table} {
  comment "Mags sandboxes of instance ${r.table} (bridge ${r.bridge}, ${subnet})"
  set resolvers4 { type ipv4_addr;${elements(r.resolvers)} }
  set blocked4 { type ipv4_addr; flags interval; auto-merge;${elements(blocked)} }
  set blocked6 { type ipv6_addr; flags interval;${elements(BLOCKED_V6)} }
  set conns { type ipv4_addr; size 65535; flags dynamic; }

  # Sandboxes never open connections to the host itself (any of its addresses, any port):
  # only replies to connections the host opened (the proxy) and DNS to a resolver the host runs.
  chain input {
    type filter hook input priority filter - 5; policy accept;
    iifname ${br} ct state established,related accept
    iifname ${br} ip daddr @resolvers4 meta l4proto { tcp, udp } th dport 53 accept
    iifname ${br} counter drop comment "sandbox -> host"
  }

  chain forward {
    type filter hook forward priority filter - 5; policy accept;
    iifname ${br} oifname ${br} counter drop comment "sandbox -> sandbox"
    oifname ${br} ct state established,related accept
    oifname ${br} counter drop comment "outside -> sandbox"
    iifname ${br} meta nfproto ipv6 counter drop comment "no IPv6 egress"
    iifname ${br} ip saddr != ${subnet} counter drop comment "spoofed source"
    iifname ${br} ip daddr @resolvers4 meta l4proto { tcp, udp } th dport 53 accept
    iifname ${br} ip daddr @blocked4 counter drop comment "sandbox -> private/LAN"
    iifname ${br} ct state new add @conns { ip saddr ct count over ${MAX_CONNECTIONS_PER_SANDBOX} } counter drop comment "too many connections"
  }

  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr ${subnet} oifname != ${br} masquerade
  }
}

table bridge ${r.table} {
  comment "Mags sandboxes of instance ${r.table}: anti-spoofing and isolation"
  set port_mac { type ifname . ether_addr;${elements(portMac)} }
  set port_ip { type ifname . ipv4_addr;${elements(portIp)} }

  # A sandbox port may only send IPv4 and ARP with the MAC and address it was given, so it cannot
  # poison the bridge's forwarding table or the host's neighbour cache.
  chain prerouting {
    type filter hook prerouting priority filter; policy accept;
    iifname != ${ports} accept
    ether type != { ip, arp } counter drop
    iifname . ether saddr != @port_mac counter drop
    iifname . arp saddr ip != @port_ip counter drop
    iifname . ip saddr != @port_ip counter drop
  }

  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname ${ports} oifname ${ports} counter drop comment "sandbox -> sandbox"
  }
}
`;
}

/** Host veth name, sandbox MAC (02:00 + the IPv4 bytes, unique per host) and address of a slot. */
export function slotNames(vethPrefix: string, subnet: Cidr, slot: number): { veth: string; mac: string; ip: string } {
  const n = (subnet.base + slot) >>> 0;
  const bytes = [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  return {
    veth: vethPrefix + slot.toString(16),
    mac: ['02', '00', ...bytes.map((b) => b.toString(16).padStart(2, '0'))].join(':'),
    ip: intToIp(n),
  };
}
