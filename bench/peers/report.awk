# report.awk turns results.tsv of run.sh into the Markdown report (stdout) and the
# JSON report (file named by -v json). Every figure is the median over the runs
# that succeeded; ratios are backtory's median divided by the peer's median.
#
# Variables: size, runs, dataset, mutation (summary lines), machine (key=value
# file), json (output path). Input columns: run tool op status wall_s user_s sys_s
# rss_kib bytes verify.

BEGIN {
	nops = split("full incr restore signature delta patch", opsl, " ")
	npeers = split("duplicity restic borg limit rdiff", peersl, " ")
	nmet = split("wall cpu rss bytes", metl, " ")
	opname["full"] = "full backup"; opname["incr"] = "second backup (after the 1% change)"
	opname["restore"] = "restore of the latest state"; opname["signature"] = "signature of the big file"
	opname["delta"] = "delta of the big file"; opname["patch"] = "patch of the big file"
	metname["wall"] = "wall time"; metname["cpu"] = "CPU time (user+sys)"
	metname["rss"] = "peak RSS"; metname["bytes"] = "bytes stored or written"
	peername["limit"] = "tar \\| zstd -T0 -3 (limit)"
	while ((getline line < machine) > 0) {
		k = substr(line, 1, index(line, "=") - 1)
		mach[k] = substr(line, index(line, "=") + 1)
		mkeys[++nmk] = k
	}
}

NR == 1 { next }

{
	key = $2 SUBSEP $3
	if (!(key in seen)) { seen[key] = 1; keys[++nkeys] = key; tool[key] = $2; op[key] = $3 }
	nrun[key]++
	verify[key] = verify[key] (verify[key] == "" ? "" : " ") ($10 == "" ? $4 : $10)
	if ($4 != "ok") { bad[key] = $4; next }
	nok[key]++
	v["wall", key] = v["wall", key] " " $5
	v["cpu", key] = v["cpu", key] " " ($6 + $7)
	v["rss", key] = v["rss", key] " " ($8 / 1024)
	if ($9 != "") v["bytes", key] = v["bytes", key] " " $9
}

# median of the space-separated numbers in s, or "" when there are none.
function median(s,   a, n, i, j, t) {
	n = split(s, a, " ")
	if (n == 0) return ""
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	return (n % 2) ? a[(n + 1) / 2] + 0 : (a[n / 2] + a[n / 2 + 1]) / 2
}

function fmt(x, unit) {
	if (x == "") return "n/a"
	if (unit == "bytes") return sprintf("%.1f", x / 1048576)
	if (unit == "rss") return sprintf("%.0f", x)
	return sprintf("%.1f", x)
}

function jstr(s) {
	gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); gsub(/\t/, " ", s)
	return "\"" s "\""
}

# target prints one row of the targets table: backtory/peer against a limit.
function target(what, o, m, peer, lim,   b, pv) {
	b = med[m, "backtory" SUBSEP o]; pv = med[m, peer SUBSEP o]
	nt++
	if (b == "" || pv == "" || pv + 0 == 0) {
		printf "| %s | n/a | n/a |\n", what
		targets[nt] = jstr(what) ", \"limit\": " lim ", \"backtory_over_peer\": null, \"met\": null"
		return
	}
	printf "| %s | %.2fx | %s |\n", what, b / pv, (b / pv <= lim ? "yes" : "**no**")
	targets[nt] = jstr(what) ", \"limit\": " lim ", \"backtory_over_peer\": " sprintf("%.4f", b / pv) ", \"met\": " (b / pv <= lim ? "true" : "false")
}

function jnum(x) { return x == "" ? "null" : x + 0 }

END {
	for (i = 1; i <= nkeys; i++) {
		k = keys[i]
		for (m = 1; m <= nmet; m++) med[metl[m], k] = median(v[metl[m], k])
	}

	printf "# backtory side by side with its peers: %s dataset, median of %d run%s\n\n", size, runs, runs == 1 ? "" : "s"
	printf "- date: %s\n", mach["date"]
	printf "- machine: %s, %s cores, %s RAM, %s, %s, %s on the work dir\n", mach["cpu"], mach["cores"], mach["memory"], mach["os"], mach["kernel"], mach["filesystem"]
	printf "- load average when the benchmark started (other jobs on the machine inflate wall times): %s\n", mach["load_at_start"]
	printf "- dataset: %s\n", dataset
	printf "- change between the two backups: %s\n", mutation
	printf "- versions: %s; %s; %s; %s; %s; %s; %s\n", (mach["backtory"] == "" ? "backtory n/a" : mach["backtory"]), mach["duplicity"], mach["restic"], mach["borg"], mach["rdiff"], mach["gpg"], mach["zstd"]
	printf "- encryption: duplicity with an OpenPGP key (gpg), restic and borg (repokey) with a repository key, backtory: %s\n", (mach["backtory_encryption"] == "" ? "n/a" : mach["backtory_encryption"])
	printf "\n## Ratios: backtory ÷ peer (below 1.00x backtory is faster, leaner or smaller)\n\n"
	printf "| operation | backtory vs | wall time | CPU time | peak RSS | bytes stored or written |\n"
	printf "|---|---|---|---|---|---|\n"
	nr = 0
	for (o = 1; o <= nops; o++) {
		bk = "backtory" SUBSEP opsl[o]
		for (p = 1; p <= npeers; p++) {
			pk = peersl[p] SUBSEP opsl[o]
			if (!(pk in seen)) continue
			row = ""
			for (m = 1; m <= nmet; m++) {
				b = med[metl[m], bk]; pv = med[metl[m], pk]
				r = ""
				if (pv == "") cell = ""
				else if (b == "" || pv + 0 == 0) cell = "n/a"
				else { r = b / pv; cell = sprintf("%.2fx", r) }
				if (pv != "") ratios[++nr] = opsl[o] SUBSEP metl[m] SUBSEP peersl[p] SUBSEP r
				row = row " " cell " |"
			}
			printf "| %s | %s |%s\n", opname[opsl[o]], (peersl[p] in peername) ? peername[peersl[p]] : peersl[p], row
		}
	}
	printf "\n## Targets of design.md §8 (wall-time ratios)\n\n"
	printf "| target | measured | met |\n|---|---|---|\n"
	target("full backup: at most 0.6x restic", "full", "wall", "restic", 0.6)
	target("second backup: at most 0.3x restic", "incr", "wall", "restic", 0.3)
	target("second backup: stores no more than duplicity's incremental", "incr", "bytes", "duplicity", 1.0)
	target("restore: at most 0.4x restic", "restore", "wall", "restic", 0.4)
	target("signature: at least 4x rdiff", "signature", "wall", "rdiff", 0.25)
	target("delta of a lightly edited file: at least 4x rdiff", "delta", "wall", "rdiff", 0.25)
	target("patch: parity with rdiff", "patch", "wall", "rdiff", 1.0)
	for (o = 1; o <= 3; o++) {
		x = med["rss", "backtory" SUBSEP opsl[o]]
		if (x == "") printf "| %s: peak RSS at most 128 MiB | n/a | n/a |\n", opsl[o]
		else printf "| %s: peak RSS at most 128 MiB | %.0f MiB | %s |\n", opsl[o], x, (x <= 128 ? "yes" : "**no**")
	}
	printf "\nTimes under a second are at the 10 ms resolution of /usr/bin/time: use the full size for those ratios.\n"
	printf "\nn/a: backtory has no figure for it (command not built yet, or it failed; see the status column below).\n"

	printf "\n## Measurements (median of the runs that succeeded)\n\n"
	printf "| tool | operation | wall s | CPU s | peak RSS MiB | MiB stored or written | verify per run | ok runs |\n"
	printf "|---|---|---|---|---|---|---|---|\n"
	for (i = 1; i <= nkeys; i++) {
		k = keys[i]
		printf "| %s | %s | %s | %s | %s | %s | %s | %d/%d |\n", tool[k], op[k], fmt(med["wall", k]), fmt(med["cpu", k]), fmt(med["rss", k], "rss"), fmt(med["bytes", k], "bytes"), verify[k], nok[k], nrun[k]
	}
	printf "\nBytes: full = repository size after the full backup; incr = what the second backup added; signature and delta = the output file; limit = `tar -cf - DATA | zstd -T0 -3 > /dev/null`.\n"

	printf "{\n  \"size\": %s,\n  \"runs\": %d,\n  \"dataset\": %s,\n  \"mutation\": %s,\n  \"machine\": {", jstr(size), runs, jstr(dataset), jstr(mutation) > json
	for (i = 1; i <= nmk; i++) printf "%s\n    %s: %s", (i > 1 ? "," : ""), jstr(mkeys[i]), jstr(mach[mkeys[i]]) > json
	printf "\n  },\n  \"results\": [" > json
	for (i = 1; i <= nkeys; i++) {
		k = keys[i]
		printf "%s\n    {\"tool\": %s, \"op\": %s, \"wall_s\": %s, \"cpu_s\": %s, \"peak_rss_mib\": %s, \"bytes\": %s, \"verify\": %s, \"ok_runs\": %d, \"runs\": %d}", (i > 1 ? "," : ""), jstr(tool[k]), jstr(op[k]), jnum(med["wall", k]), jnum(med["cpu", k]), jnum(med["rss", k]), jnum(med["bytes", k]), jstr(verify[k]), nok[k], nrun[k] > json
	}
	printf "\n  ],\n  \"ratios\": [" > json
	for (i = 1; i <= nr; i++) {
		split(ratios[i], f, SUBSEP)
		printf "%s\n    {\"op\": %s, \"metric\": %s, \"peer\": %s, \"backtory_over_peer\": %s}", (i > 1 ? "," : ""), jstr(f[1]), jstr(f[2]), jstr(f[3]), (f[4] == "" ? "null" : sprintf("%.4f", f[4])) > json
	}
	printf "\n  ],\n  \"targets\": [" > json
	for (i = 1; i <= nt; i++) printf "%s\n    {\"target\": %s}", (i > 1 ? "," : ""), targets[i] > json
	printf "\n  ]\n}\n" > json
	close(json)
}
