module github.com/shtetl/zmanim-ops

go 1.26.8

tool github.com/magefile/mage

require github.com/magefile/mage v1.17.2 // indirect
