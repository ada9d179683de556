// Package tests holds the functional tests: they run the real rkt binary,
// the real stage1 images and the test images that `make` builds under
// build/, as root, each test in its own data and config directories under a
// temporary directory. Set RKT_BUILD_DIR to use another build tree.
package tests
