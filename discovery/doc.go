// Package discovery turns appc image names into the URLs of images,
// signatures and public keys, by meta discovery (ac-discovery and
// ac-discovery-pubkeys pages, walking the name's prefixes). There is no
// simple discovery: appc spec 0.8.0, the version we implement, removed it
// (see its CHANGELOG), and appc/spec/discovery no longer offers it.
package discovery
