// Package discovery turns appc image names into the URLs of images,
// signatures and public keys, by simple and meta discovery.
package discovery
