package store

import (
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// LatestMigration returns the highest version among the migrations/NNNNN_*.sql
// files of a driver's embedded file system.
func LatestMigration(fsys fs.FS) (int64, error) {
	files, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", err)
	}
	var latest int64
	for _, f := range files {
		num, _, ok := strings.Cut(path.Base(f), "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil {
			return 0, fmt.Errorf("migrations: %s: the name must start with a version number", f)
		}
		latest = max(latest, v)
	}
	return latest, nil
}
