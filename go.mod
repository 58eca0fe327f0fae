module github.com/qrauth/qrauth

go 1.26.8
