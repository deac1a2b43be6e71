
BoutputJ(¹DV½Ý÷•=hk	¼„>Sv<-c¾rB½h‹Ç9À2¼‚R=