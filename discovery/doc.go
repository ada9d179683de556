// Package discovery turns appc image names into the URLs of images,
// signatures and public keys. Meta discovery (ac-discovery and
// ac-discovery-pubkeys pages, walking the name's prefixes) goes through
// appc/spec/discovery. Simple discovery (https://{name}-{version}-{os}-{arch}.{ext}),
// which appc spec 0.8.0 dropped and appc/spec/discovery does not offer, is
// rendered here for the images still published that way; the fetcher tries
// it only when meta discovery found no template, so a name served by
// discovery pages costs no extra request.
package discovery
