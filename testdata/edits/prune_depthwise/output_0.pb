
BoutputJ(¼Ÿb=/›M¾ÒÓß=ıSñ½€±oºDBŠ½Ó›=Ô­£=Aj»½®c¢=