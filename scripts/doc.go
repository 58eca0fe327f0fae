// Package scripts holds no code: its tests check the release script
// (scripts/release) and the Dockerfile at the root of the module, the way
// a release and an image build would use them.
package scripts
