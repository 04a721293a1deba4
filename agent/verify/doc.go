// Package verify checks that the nmstate policies selecting this node really
// took effect in the kernel. nmstate's enactment says what nmstate believes;
// the kernel's links say what is there. The comparison is a pure function of
// a policy's desired state, its enactment state and a link snapshot; the
// Verifier around it watches policies, this node's enactments and the Node
// itself through an informer cache and asks for a new round when they change.
package verify
