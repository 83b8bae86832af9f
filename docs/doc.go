// Package docs holds the repository's reference pages (requirements.md: the key of the
// requirement numbers cited in comments and test names). It has no code; its test keeps
// requirements.md complete.
package docs
