# The status script's collector (collect.rs): one awk prints every H, T and U line
# from the files the shell part left in `dir` and from the host's own files, so a
# host's status costs a handful of processes instead of dozens per tenant.
# Variables: now (Unix seconds), paths (the paths df was given, in order; df -P -k's
# output is on stdin), dir (the temp dir; empty: host lines only), nocurl (set when
# curl is missing), tenants (name and base port, or -, one per line).
function slurp(f, sep,   s, line, n) {
  s = ""; n = 0
  while ((getline line < f) > 0) { s = s (n++ ? sep : "") line }
  close(f)
  return s
}
function exists(f,   line, r) { r = (getline line < f); close(f); return r >= 0 }
function clip(s, n) { return substr(s, 1, n) }
BEGIN {
  print "H now " now
  if ((getline line < "/proc/uptime") > 0) { split(line, up, " "); print "H uptime " up[1] }
  close("/proc/uptime")
  cpus = 0
  while ((getline line < "/proc/cpuinfo") > 0) if (line ~ /^processor[ \t]*:/) cpus++
  close("/proc/cpuinfo")
  if (cpus) print "H cpus " cpus
  if ((getline line < "/proc/loadavg") > 0) { split(line, l, " "); print "H load " l[1] " " l[2] " " l[3] }
  close("/proc/loadavg")
  mt = ""; ma = ""
  while ((getline line < "/proc/meminfo") > 0) {
    split(line, m, " ")
    if (m[1] == "MemTotal:") mt = m[2]
    if (m[1] == "MemAvailable:") ma = m[2]
  }
  close("/proc/meminfo")
  if (mt != "") print "H mem " mt " " ma
  np = split(paths, p, " ")
}
NR > 1 && NR - 1 <= np { print "H df " p[NR - 1], $(NF-4), $(NF-3), $(NF-2), $NF }
END {
  if (dir == "") exit
  nt = split(tenants, tv, "\n")
  # container colors: "drover-TENANT-COLOR REFERENCE ID" from podman ps
  while ((getline line < (dir "/images")) > 0) {
    split(line, iw, " ")
    if (iw[3] != "" && iw[3] !~ /[^A-Za-z0-9]/ && iw[2] !~ /[^A-Za-z0-9._:\/@-]/) image[iw[1]] = iw[2] " " iw[3]
  }
  close(dir "/images")
  # the tenant's last audit line, in one pass over the log
  while ((getline line < "/var/log/drover/audit.log") > 0)
    for (i = 1; i <= nt; i += 2) if (index(line, " tenant=" tv[i] " ")) audit[tv[i]] = line
  close("/var/log/drover/audit.log")
  for (i = 1; i <= nt; i += 2) {
    n = tv[i]; base = tv[i + 1]
    if (base != "-") for (k = 0; k < 2; k++) {
      c = k ? "green" : "blue"; w = dir "/" n "." c
      print "T " n " port." c " " (base + k)
      if (("drover-" n "-" c) in image) print "T " n " image." c " " image["drover-" n "-" c]
      if (exists(w ".probe")) {
        print "T " n " probe." c " command"
        print "T " n " health." c " " slurp(w ".h", "")
        e = clip(slurp(w ".err", "\n"), 512); gsub(/[\r\n]/, " ", e)
        print "T " n " error." c " " e
      } else if (nocurl) {
        print "T " n " health." c " 127 000 0"
        print "T " n " error." c " curl is not installed"
      } else {
        print "T " n " health." c " " slurp(w ".rc", "") " " slurp(w ".h", "")
        b = clip(slurp(w ".body", "\n"), 2048); gsub(/[\r\n]/, "", b)
        print "T " n " body." c " " b
        e = clip(slurp(w ".err", "\n"), 512); gsub(/[\r\n]/, " ", e)
        print "T " n " error." c " " e
      }
    }
    d = "/var/lib/drover/" n
    if (exists(d "/state.json")) {
      s = clip(slurp(d "/state.json", "\n"), 8192); gsub(/[\r\n]/, "", s)
      print "T " n " state " s
    }
    if (exists(dir "/" n ".lock")) {
      print "T " n " lock.age " (now - slurp(dir "/" n ".lock", ""))
      while ((getline line < (d "/lock.d/owner")) > 0) print "T " n " lock " line
      close(d "/lock.d/owner")
    }
    if (n in audit) print "T " n " audit " audit[n]
    conf = "/etc/nginx/conf.d/drover-" n ".conf"; r = ""; wt = ""
    while ((getline line < conf) > 0) {
      if (r == "" && match(line, /^[ \t]*server 127\.0\.0\.1:[0-9]+[ ;]/)) {
        r = substr(line, RSTART, RLENGTH); sub(/^[ \t]*server 127\.0\.0\.1:/, "", r); sub(/[ ;]$/, "", r)
      }
      if (wt == "" && line ~ /^# Managed by drover:.*, [0-9]+% of traffic\.$/) {
        wt = line; sub(/% of traffic\.$/, "", wt); sub(/.*, /, "", wt)
      }
    }
    close(conf)
    if (r != "") print "T " n " route " r
    if (wt != "") print "T " n " weight " wt
    print "T " n " done"
  }
  u = dir "/units"
  while ((getline line < u) > 0) print "U " line
  close(u)
}
