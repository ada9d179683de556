package fetch

import (
	"context"
	"fmt"
)

// fetchContainerImage fetches docker:// and oci: references. Until the
// Docker/OCI conversion lands it refuses them.
func (f *Fetcher) fetchContainerImage(ctx context.Context, ref string) (string, error) {
	return "", fmt.Errorf("%s: %w", ref, ErrContainerImagesUnsupported)
}
