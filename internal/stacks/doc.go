// Package stacks is the main-module side of the production infrastructure: it runs the CDK app
// in infra/ (a module of its own, so the main module never imports CDK) through a typed
// wrapper, drives the pinned CDK CLI for diff and deploy, and backs the infra:* mage targets.
// Pricing lives in the subpackage cost. (Named stacks, not infra, so it is never confused with
// the top-level infra/ module that defines the stacks.)
package stacks
