package backup

import (
	"strings"
	"testing"
)

func TestRestoreList(t *testing.T) {
	toc := `;
; Archive created at 2026-01-02 03:04:05 UTC
;     dbname: cairn
;
; Selected TOC Entries:
;
5; 2615 2200 SCHEMA - public pg_database_owner
3948; 0 0 COMMENT - SCHEMA public pg_database_owner
3949; 0 0 ACL - SCHEMA public pg_database_owner
6; 2615 16400 SCHEMA - publicity app
2; 3079 48756 EXTENSION - vector 
3950; 0 0 COMMENT - EXTENSION vector 
1072; 1247 49413 TYPE public river_job_state postgres
240; 1259 49000 TABLE public workflows postgres
3951; 0 49000 TABLE DATA public workflows postgres
3952; 0 0 COMMENT public TABLE workflows postgres
`
	got := restoreList(toc, "public")
	for _, gone := range []string{"SCHEMA - public ", "COMMENT - SCHEMA public", "ACL - SCHEMA public", "COMMENT - EXTENSION vector"} {
		if strings.Contains(got, gone) {
			t.Errorf("restore list keeps %q:\n%s", gone, got)
		}
	}
	for _, kept := range []string{"; Archive created at", "SCHEMA - publicity app", "EXTENSION - vector", "TYPE public river_job_state",
		"TABLE public workflows", "TABLE DATA public workflows", "COMMENT public TABLE workflows"} {
		if !strings.Contains(got, kept) {
			t.Errorf("restore list lost %q:\n%s", kept, got)
		}
	}
}
